// The workflow definition as the canvas and the YAML editor share it.
//
// The definition object (what the YAML text parses to) is the one source of truth. The canvas
// is derived from it (a node per step, an edge per `needs` entry) and every canvas edit is a
// pure function from one definition to the next; the YAML text is rendered from the result.
// Node positions are presentation only and never written into the definition.
import { LineCounter, parseDocument, stringify } from 'yaml';
import type { DefinitionProblem } from './api';

export const STEP_TYPES = ['agent', 'tool', 'approval', 'workflow', 'wait'] as const;
export type StepType = (typeof STEP_TYPES)[number];

export type Step = { id: string; type: StepType | string; needs?: string | string[]; [key: string]: unknown };
export type Definition = { name?: string; description?: string; inputs?: Record<string, unknown>; steps: Step[]; [key: string]: unknown };

export interface ParseResult {
  def: Definition | null;
  error: { message: string; line?: number; column?: number } | null;
}

/** Parses YAML (or JSON, which is YAML) text into a definition; the shape is the server's to judge. */
export function parseDefinition(text: string): ParseResult {
  const lines = new LineCounter();
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: false, lineCounter: lines });
  if (doc.errors.length) {
    const e = doc.errors[0];
    const at = lines.linePos(e.pos[0]);
    return { def: null, error: { message: e.message.split('\n')[0], line: at.line, column: at.col } };
  }
  const v = doc.toJS({ maxAliasCount: 1000 }) as unknown;
  if (v === null || v === undefined) return { def: { steps: [] }, error: null };
  if (typeof v !== 'object' || Array.isArray(v)) return { def: null, error: { message: 'a definition is a mapping (name, steps, ...)' } };
  const def = v as Definition;
  if (def.steps !== undefined && !Array.isArray(def.steps)) return { def: null, error: { message: '`steps` must be a list' } };
  const steps = (def.steps ?? []) as unknown[];
  if (steps.some((s) => typeof s !== 'object' || s === null || Array.isArray(s)))
    return { def: null, error: { message: 'every step must be a mapping' } };
  return { def: { ...def, steps: steps as Step[] }, error: null };
}

/** Renders a definition as YAML text (keys in their order, long strings unfolded). */
export function toYaml(def: Definition): string {
  return stringify(def, { lineWidth: 0, indent: 2 });
}

export function needsOf(step: Step): string[] {
  const n = step.needs;
  if (typeof n === 'string') return [n];
  if (Array.isArray(n)) return n.filter((x): x is string => typeof x === 'string');
  return [];
}

function withNeeds(step: Step, needs: string[]): Step {
  const { needs: _old, ...rest } = step;
  void _old;
  if (!needs.length) return rest as Step;
  // `needs` stays where it was among the keys when it existed.
  if ('needs' in step) {
    const out: Step = { id: step.id, type: step.type };
    for (const [k, v] of Object.entries(step)) out[k] = k === 'needs' ? needs : v;
    return out;
  }
  return { ...rest, needs } as Step;
}

// ---- the graph the canvas draws ----

export interface GraphNode {
  id: string;
  position: { x: number; y: number };
  data: { step: Step; problems: DefinitionProblem[] };
}
export interface GraphEdge {
  id: string;
  source: string;
  target: string;
}

export const NODE_W = 220;
export const NODE_H = 72;

/** Layered layout: a step sits one column right of its deepest need; cycles do not loop. */
export function layout(def: Definition): Record<string, { x: number; y: number }> {
  const byId = new Map(def.steps.map((s) => [String(s.id), s]));
  const depth = new Map<string, number>();
  const visiting = new Set<string>();
  const depthOf = (id: string): number => {
    const known = depth.get(id);
    if (known !== undefined) return known;
    if (visiting.has(id)) return 0;
    visiting.add(id);
    const s = byId.get(id);
    let d = 0;
    if (s) for (const n of needsOf(s)) if (byId.has(n)) d = Math.max(d, depthOf(n) + 1);
    visiting.delete(id);
    depth.set(id, d);
    return d;
  };
  const rows = new Map<number, number>();
  const out: Record<string, { x: number; y: number }> = {};
  for (const s of def.steps) {
    const id = String(s.id);
    const d = depthOf(id);
    const r = rows.get(d) ?? 0;
    rows.set(d, r + 1);
    out[id] = { x: d * (NODE_W + 60), y: r * (NODE_H + 28) };
  }
  return out;
}

/** Problems of the server's 422 by step id (from `steps[i]...` paths); the rest under ''. */
export function problemsByStep(def: Definition | null, problems: DefinitionProblem[]): Record<string, DefinitionProblem[]> {
  const out: Record<string, DefinitionProblem[]> = {};
  for (const p of problems) {
    const path = p.path ?? p.field ?? '';
    const m = /^steps\[(\d+)\]/.exec(path);
    const step = m && def ? def.steps[Number(m[1])] : undefined;
    const key = step ? String(step.id) : '';
    (out[key] ??= []).push(p);
  }
  return out;
}

const NO_PROBLEMS: DefinitionProblem[] = [];

export function toGraph(
  def: Definition,
  positions: Record<string, { x: number; y: number }> = {},
  problems: Record<string, DefinitionProblem[]> = {},
): { nodes: GraphNode[]; edges: GraphEdge[] } {
  const auto = layout(def);
  const ids = new Set(def.steps.map((s) => String(s.id)));
  const nodes = def.steps.map((s) => {
    const id = String(s.id);
    return { id, position: positions[id] ?? auto[id] ?? { x: 0, y: 0 }, data: { step: s, problems: problems[id] ?? NO_PROBLEMS } };
  });
  const edges: GraphEdge[] = [];
  for (const s of def.steps)
    for (const n of needsOf(s)) if (ids.has(n)) edges.push({ id: `${n}->${s.id}`, source: n, target: String(s.id) });
  return { nodes, edges };
}

/**
 * Canvas to definition: the steps in the nodes' order with `needs` from the edges (a need
 * naming a step that is not on the canvas is kept: the server reports it).
 */
export function fromGraph(def: Definition, nodes: { id: string }[], edges: { source: string; target: string }[]): Definition {
  const byId = new Map(def.steps.map((s) => [String(s.id), s]));
  const onCanvas = new Set(nodes.map((n) => n.id));
  const steps = nodes
    .map((n) => byId.get(n.id))
    .filter((s): s is Step => !!s)
    .map((s) => {
      const dangling = needsOf(s).filter((x) => !onCanvas.has(x));
      const fromEdges = edges.filter((e) => e.target === String(s.id)).map((e) => e.source);
      const old = needsOf(s);
      // Keep the order the needs were written in, new ones after.
      const merged = [...old.filter((x) => fromEdges.includes(x) || dangling.includes(x)), ...fromEdges.filter((x) => !old.includes(x))];
      const same = merged.length === old.length && merged.every((x, i) => x === old[i]);
      return same ? s : withNeeds(s, merged);
    });
  return { ...def, steps };
}

// ---- edits ----

export function defaultsFor(type: StepType): Record<string, unknown> {
  switch (type) {
    case 'agent':
      return { agent: '' };
    case 'tool':
      return { tool: '' };
    case 'approval':
      return { message: 'Continue?' };
    case 'workflow':
      return { workflow: '' };
    case 'wait':
      return { duration: '10s' };
  }
}

export function uniqueStepId(def: Definition, base: string): string {
  const taken = new Set(def.steps.map((s) => String(s.id)));
  const clean = base.replace(/[^A-Za-z0-9_-]/g, '-').replace(/^[0-9-]+/, '') || 'step';
  if (!taken.has(clean)) return clean;
  for (let i = 2; ; i++) if (!taken.has(`${clean}-${i}`)) return `${clean}-${i}`;
}

export function addStep(def: Definition, type: StepType, after?: string): { def: Definition; id: string } {
  const id = uniqueStepId(def, type);
  const step: Step = { id, type, ...defaultsFor(type) };
  if (after && def.steps.some((s) => s.id === after)) step.needs = [after];
  return { def: { ...def, steps: [...def.steps, step] }, id };
}

export function removeStep(def: Definition, id: string): Definition {
  return {
    ...def,
    steps: def.steps
      .filter((s) => s.id !== id)
      .map((s) => (needsOf(s).includes(id) ? withNeeds(s, needsOf(s).filter((n) => n !== id)) : s)),
  };
}

export function connect(def: Definition, source: string, target: string): Definition {
  if (source === target) return def;
  return {
    ...def,
    steps: def.steps.map((s) => (s.id === target && !needsOf(s).includes(source) ? withNeeds(s, [...needsOf(s), source]) : s)),
  };
}

export function disconnect(def: Definition, source: string, target: string): Definition {
  return {
    ...def,
    steps: def.steps.map((s) => (s.id === target && needsOf(s).includes(source) ? withNeeds(s, needsOf(s).filter((n) => n !== source)) : s)),
  };
}

/** Sets (or, with undefined or '', removes) keys of one step; renaming `id` renames its uses in needs. */
export function updateStep(def: Definition, id: string, patch: Record<string, unknown>): Definition {
  const newId = typeof patch.id === 'string' && patch.id !== id ? patch.id : null;
  return {
    ...def,
    steps: def.steps.map((s) => {
      let next = s;
      if (s.id === id) {
        next = { ...s };
        for (const [k, v] of Object.entries(patch)) {
          if (v === undefined || v === '') delete next[k];
          else next[k] = v;
        }
        next.id = (newId ?? id) as string;
      }
      if (newId && needsOf(next).includes(id)) next = withNeeds(next, needsOf(next).map((n) => (n === id ? newId : n)));
      return next;
    }),
  };
}

// ---- inputs of a run ----

export interface InputSpec {
  name: string;
  type: string;
  required: boolean;
  default?: unknown;
  description?: string;
  enum?: unknown[];
}

export function declaredInputs(def: Definition | null): InputSpec[] {
  const ins = def?.inputs;
  if (!ins || typeof ins !== 'object') return [];
  return Object.entries(ins).map(([name, spec]) => {
    if (typeof spec === 'string') return { name, type: spec, required: false };
    const o = (spec ?? {}) as Record<string, unknown>;
    return {
      name,
      type: typeof o.type === 'string' ? o.type : 'string',
      required: o.required === true,
      default: o.default,
      description: typeof o.description === 'string' ? o.description : undefined,
      enum: Array.isArray(o.enum) ? o.enum : undefined,
    };
  });
}

/** Form text to a typed value for one input; throws with a message people can act on. */
export function coerceInput(spec: InputSpec, text: string): unknown {
  switch (spec.type) {
    case 'number':
    case 'integer': {
      const n = Number(text);
      if (text.trim() === '' || !Number.isFinite(n)) throw new Error(`${spec.name}: not a number`);
      return n;
    }
    case 'boolean':
      return text === 'true';
    case 'object':
    case 'array':
      try {
        return JSON.parse(text);
      } catch {
        throw new Error(`${spec.name}: not valid JSON`);
      }
    default:
      return text;
  }
}
