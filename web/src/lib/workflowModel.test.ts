// The canvas <-> YAML round trip: a definition drawn on the canvas and written back is the
// same definition, and each canvas edit changes exactly what it says in the YAML.
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import {
  addStep,
  connect,
  declaredInputs,
  coerceInput,
  disconnect,
  fromGraph,
  needsOf,
  parseDefinition,
  problemsByStep,
  removeStep,
  toGraph,
  toYaml,
  updateStep,
  type Definition,
} from './workflowModel';

const examples = path.resolve(__dirname, '../../../examples/workflows');

function parse(text: string): Definition {
  const r = parseDefinition(text);
  expect(r.error).toBeNull();
  return r.def!;
}

/** What the canvas does: draw the definition, then write it back from the nodes and edges. */
function throughCanvas(def: Definition): Definition {
  const g = toGraph(def);
  return fromGraph(def, g.nodes, g.edges);
}

const BUILD = `name: build-and-test
description: build, test in parallel, ask, report
inputs:
  project: {type: string, required: true}
  suites: {type: array, default: [unit, e2e]}
steps:
  - id: build
    type: agent
    agent: builder
    retry: {maxAttempts: 3, backoff: 2s}
  - id: test
    type: agent
    agent: {kind: command, labels: {role: tester}}
    needs: build
    forEach: \${{ inputs.suites }}
  - id: approve
    type: approval
    needs: [test]
    message: "Publish \${{ inputs.project }}?"
  - id: report
    type: agent
    agent: reporter
    needs: [approve, build]
    if: steps.approve.outputs.approved
`;

describe('canvas <-> YAML round trip', () => {
  it('a definition drawn and written back is unchanged, text and all', () => {
    const def = parse(BUILD);
    const back = throughCanvas(def);
    expect(back).toEqual(def);
    // The rendered YAML parses to the same definition, and rendering is stable.
    const text = toYaml(back);
    expect(parse(text)).toEqual(def);
    expect(toYaml(parse(text))).toBe(text);
  });

  it('every example workflow of the repository survives the canvas', () => {
    const files = readdirSync(examples).filter((f) => /\.(ya?ml|json)$/.test(f));
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) {
      const def = parse(readFileSync(path.join(examples, f), 'utf8'));
      expect(throughCanvas(def), f).toEqual(def);
      expect(parse(toYaml(throughCanvas(def))), f).toEqual(def);
    }
  });

  it('draws one node per step and one edge per need, in layers', () => {
    const g = toGraph(parse(BUILD));
    expect(g.nodes.map((n) => n.id)).toEqual(['build', 'test', 'approve', 'report']);
    expect(g.edges.map((e) => e.id).sort()).toEqual(['approve->report', 'build->report', 'build->test', 'test->approve']);
    const x = Object.fromEntries(g.nodes.map((n) => [n.id, n.position.x]));
    expect(x.build).toBeLessThan(x.test);
    expect(x.test).toBeLessThan(x.approve);
    expect(x.approve).toBeLessThan(x.report);
  });

  it('a connection drawn on the canvas becomes a need in the YAML, and removing it removes it', () => {
    let def = parse('name: two\nsteps:\n  - {id: gate, type: approval, message: ok?}\n  - {id: pause, type: wait, duration: 1s}\n');
    const g = toGraph(def);
    def = fromGraph(def, g.nodes, [...g.edges, { source: 'gate', target: 'pause' }]);
    expect(parse(toYaml(def)).steps[1]).toEqual({ id: 'pause', type: 'wait', duration: '1s', needs: ['gate'] });
    expect(connect(def, 'gate', 'pause')).toEqual(def); // no duplicate
    expect(connect(def, 'pause', 'pause')).toEqual(def); // no self loop
    def = disconnect(def, 'gate', 'pause');
    expect(parse(toYaml(def)).steps[1]).toEqual({ id: 'pause', type: 'wait', duration: '1s' });
  });

  it('adds, edits, renames and removes steps', () => {
    let def = parse('name: w\nsteps: []\n');
    const a = addStep(def, 'approval');
    def = a.def;
    const b = addStep(def, 'wait', a.id);
    def = b.def;
    expect(a.id).toBe('approval');
    expect(b.id).toBe('wait');
    expect(addStep(def, 'wait').id).toBe('wait-2');
    def = updateStep(def, 'approval', { id: 'gate', message: 'Ship it?', approvers: ['admin'] });
    def = updateStep(def, 'wait', { duration: '20ms', name: '' });
    const back = parse(toYaml(def));
    expect(back.steps).toEqual([
      { id: 'gate', type: 'approval', message: 'Ship it?', approvers: ['admin'] },
      { id: 'wait', type: 'wait', duration: '20ms', needs: ['gate'] },
    ]);
    def = removeStep(def, 'gate');
    expect(parse(toYaml(def)).steps).toEqual([{ id: 'wait', type: 'wait', duration: '20ms' }]);
  });

  it('keeps a need that names a step not on the canvas, for the server to report', () => {
    const def = parse('name: w\nsteps:\n  - {id: a, type: wait, duration: 1s, needs: [ghost]}\n');
    expect(needsOf(throughCanvas(def).steps[0])).toEqual(['ghost']);
  });

  it('text that is not a definition says where', () => {
    const bad = parseDefinition('name: x\nsteps:\n  - id: a\n   type: wait\n');
    expect(bad.def).toBeNull();
    expect(bad.error?.line).toBeGreaterThan(0);
    expect(parseDefinition('[1, 2]').error?.message).toMatch(/mapping/);
    expect(parseDefinition('name: x\nsteps: 3\n').error?.message).toMatch(/list/);
    expect(parseDefinition('name: x\nsteps: [3]\n').error?.message).toMatch(/mapping/);
  });

  it('puts the server’s 422 problems on the step that has them', () => {
    const def = parse('name: w\nsteps:\n  - {id: a, type: wait, duration: 1s}\n  - {id: b, type: wait, duration: soon, colour: red}\n');
    const by = problemsByStep(def, [
      { path: 'steps[1].colour', code: 'unknown_key' },
      { path: 'steps[1].duration', code: 'bad_duration' },
      { path: 'name', code: 'bad_name' },
      { path: 'steps[7].x', code: 'required' },
    ]);
    expect(by.b.map((p) => p.code)).toEqual(['unknown_key', 'bad_duration']);
    expect(by.a).toBeUndefined();
    expect(by[''].map((p) => p.code)).toEqual(['bad_name', 'required']);
    expect(toGraph(def, {}, by).nodes[1].data.problems).toHaveLength(2);
  });

  it('reads the declared inputs for the run form and types what is typed', () => {
    const ins = declaredInputs(parse(BUILD));
    expect(ins.map((i) => [i.name, i.type, i.required])).toEqual([
      ['project', 'string', true],
      ['suites', 'array', false],
    ]);
    expect(coerceInput(ins[1], '["a"]')).toEqual(['a']);
    expect(() => coerceInput(ins[1], '[a')).toThrow(/JSON/);
    expect(coerceInput({ name: 'n', type: 'integer', required: false }, '3')).toBe(3);
    expect(() => coerceInput({ name: 'n', type: 'number', required: false }, 'x')).toThrow(/number/);
  });

  it('lays out 1000 steps quickly', () => {
    const steps = Array.from({ length: 1000 }, (_, i) => ({ id: `s${i}`, type: 'wait', duration: '1s', ...(i ? { needs: [`s${i - 1}`] } : {}) }));
    const t0 = performance.now();
    const g = toGraph({ name: 'big', steps });
    expect(g.edges).toHaveLength(999);
    expect(performance.now() - t0).toBeLessThan(500);
  });
});
