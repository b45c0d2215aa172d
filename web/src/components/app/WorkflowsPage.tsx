// /workflows: the list, the editor (canvas and YAML side by side), runs with inputs and the
// live timeline of an execution. Which workflow / execution is open lives in the URL
// (?id=...&execution=...), so a link or a reload shows the same thing.
import * as React from 'react';
import { GitBranch, Play, Plus, Save, Trash2 } from 'lucide-react';
import { ApiError, can, type DefinitionProblem, type Execution, type StepStatus, type Workflow } from '../../lib/api';
import { api } from '../../lib/client';
import { useAsync, useLiveEvents } from '../../lib/hooks';
import { cn, timeAgo } from '../../lib/utils';
import {
  addStep,
  coerceInput,
  declaredInputs,
  needsOf,
  parseDefinition,
  problemsByStep,
  removeStep,
  STEP_TYPES,
  toYaml,
  updateStep,
  connect,
  disconnect,
  type Definition,
  type StepType,
} from '../../lib/workflowModel';
import { Badge } from '../ui/badge';
import { Button } from '../ui/button';
import { Card, CardContent, CardHeader, CardTitle } from '../ui/card';
import { Dialog, DialogContent, DialogDescription, DialogFooter, DialogHeader, DialogTitle } from '../ui/dialog';
import { Input, NativeSelect, Textarea } from '../ui/input';
import { Field } from '../ui/label';
import { Tabs, TabsContent, TabsList, TabsTrigger } from '../ui/tabs';
import { useToast } from '../ui/toast';
import { AppShell, useSession } from './AppShell';
import { EmptyState, ErrorState, LoadingState } from './states';
import { WorkflowCanvas } from './WorkflowCanvas';
import { EXEC_VARIANT, WorkflowTimeline } from './WorkflowTimeline';

const NEW = 'new';
const STARTER = `name: my-workflow
description: ''
steps:
  - id: first
    type: wait
    duration: 1s
`;

interface Place {
  id: string | null;
  execution: string | null;
  tab: 'editor' | 'runs';
}

function readPlace(): Place {
  const q = new URLSearchParams(window.location.search);
  return { id: q.get('id'), execution: q.get('execution'), tab: q.get('tab') === 'runs' || q.get('execution') ? 'runs' : 'editor' };
}

function usePlace(): [Place, (p: Partial<Place>) => void] {
  const [place, setPlace] = React.useState<Place>(readPlace);
  React.useEffect(() => {
    const onPop = () => setPlace(readPlace());
    window.addEventListener('popstate', onPop);
    return () => window.removeEventListener('popstate', onPop);
  }, []);
  const go = React.useCallback((p: Partial<Place>) => {
    setPlace((old) => {
      const next = { ...old, ...p };
      const q = new URLSearchParams();
      if (next.id) q.set('id', next.id);
      if (next.tab === 'runs') q.set('tab', 'runs');
      if (next.execution) q.set('execution', next.execution);
      const url = `/workflows${q.toString() ? `?${q}` : ''}`;
      if (url !== window.location.pathname + window.location.search) window.history.pushState(null, '', url);
      return next;
    });
  }, []);
  return [place, go];
}

// ---- the list ----

function WorkflowList({ selected, onOpen }: { selected: string | null; onOpen: (id: string) => void }) {
  const { role } = useSession();
  const list = useAsync(() => api.workflows.list().then((r) => r.data), []);
  return (
    <Card className="h-fit">
      <CardHeader className="flex flex-row items-center justify-between gap-2 space-y-0">
        <CardTitle className="text-base">Workflows</CardTitle>
        {can(role, 'workflows.write') ? (
          <Button size="sm" onClick={() => onOpen(NEW)} data-testid="new-workflow">
            <Plus /> New
          </Button>
        ) : null}
      </CardHeader>
      <CardContent>
        {list.loading && !list.data ? (
          <LoadingState label="Loading workflows" rows={3} />
        ) : list.error ? (
          <ErrorState error={list.error} onRetry={list.reload} />
        ) : !list.data?.length ? (
          <EmptyState title="No workflows yet">{can(role, 'workflows.write') ? 'Start one with New.' : 'An operator or admin can create them.'}</EmptyState>
        ) : (
          <nav aria-label="Workflows">
            <ul className="grid gap-1" data-testid="workflow-list">
              {list.data.map((w) => (
                <li key={w.id}>
                  <button
                    type="button"
                    onClick={() => onOpen(w.id)}
                    aria-current={selected === w.id ? 'page' : undefined}
                    className={cn(
                      'w-full rounded-md px-2 py-1.5 text-left text-sm hover:bg-muted focus-visible:outline-2 focus-visible:outline-ring',
                      selected === w.id && 'bg-muted font-medium',
                    )}
                  >
                    <span className="block truncate">{w.name}</span>
                    <span className="block truncate text-xs text-muted-foreground">
                      v{w.version} · {timeAgo(w.updatedAt)}
                    </span>
                  </button>
                </li>
              ))}
            </ul>
          </nav>
        )}
      </CardContent>
    </Card>
  );
}

// ---- the selected step's settings ----

const MAIN_KEY: Record<StepType, { key: string; label: string; hint: string }> = {
  agent: { key: 'agent', label: 'Agent', hint: 'an agent id or name' },
  tool: { key: 'tool', label: 'Tool', hint: 'adapter/tool' },
  approval: { key: 'message', label: 'Message', hint: 'shown to the approvers; ${{ }} templates allowed' },
  workflow: { key: 'workflow', label: 'Workflow', hint: 'a workflow id or name' },
  wait: { key: 'duration', label: 'Duration', hint: 'e.g. 250ms, 30s, 5m' },
};

/** How long typing in a step's field may pause before the definition (canvas, YAML) follows. */
const DRAFT_COMMIT_MS = 250;

/**
 * A text field of the step settings that keeps what is typed to itself and hands it on once
 * typing pauses (in a transition, so a key pressed meanwhile comes first), when the field is
 * left, or when it goes away: a key press redraws this field, not the canvas and the YAML of a
 * large workflow. A change from outside (the YAML) shows unless a draft is waiting.
 */
function DraftInput({ value, onCommit, onBlur, ...props }: Omit<React.InputHTMLAttributes<HTMLInputElement>, 'value' | 'onChange'> & { value: string; onCommit: (v: string) => void }) {
  const [draft, setDraft] = React.useState(value);
  const pending = React.useRef<{ v: string; timer: ReturnType<typeof setTimeout> } | null>(null);
  const commit = React.useRef(onCommit);
  commit.current = onCommit;
  React.useEffect(() => {
    if (!pending.current) setDraft(value);
  }, [value]);
  const flush = React.useCallback((transition: boolean) => {
    const p = pending.current;
    if (!p) return;
    clearTimeout(p.timer);
    pending.current = null;
    if (transition) React.startTransition(() => commit.current(p.v));
    else commit.current(p.v);
  }, []);
  React.useEffect(() => () => flush(false), [flush]);
  return (
    <Input
      {...props}
      value={draft}
      onChange={(e) => {
        const v = e.target.value;
        setDraft(v);
        if (pending.current) clearTimeout(pending.current.timer);
        pending.current = { v, timer: setTimeout(() => flush(true), DRAFT_COMMIT_MS) };
      }}
      onBlur={(e) => {
        flush(false);
        onBlur?.(e);
      }}
    />
  );
}

// The text fields are keyed by the step: a draft belongs to its step and is handed on when
// another step is selected (the field goes away), while the rest of the panel is only updated.
function StepSettings({
  def,
  id,
  readOnly,
  problems,
  onUpdate,
  onSelect,
}: {
  def: Definition;
  id: string;
  readOnly: boolean;
  problems: DefinitionProblem[];
  /** An edit of the current definition (applied to the newest one, also after a pause). */
  onUpdate: (edit: (d: Definition) => Definition) => void;
  onSelect: (id: string | null) => void;
}) {
  const step = def.steps.find((s) => String(s.id) === id);
  const [idText, setIdText] = React.useState(id);
  React.useEffect(() => setIdText(id), [id]);
  if (!step) return null;
  const type = (STEP_TYPES as readonly string[]).includes(String(step.type)) ? (step.type as StepType) : null;
  const main = type ? MAIN_KEY[type] : null;
  const errFor = (key: string) => problems.find((p) => (p.path ?? p.field ?? '').replace(/^steps\[\d+\]\.?/, '').split(/[.[]/)[0] === key);
  const fmt = (p?: DefinitionProblem) => (p ? `${p.code}${p.message ? `: ${p.message}` : ''}` : undefined);
  const set = (patch: Record<string, unknown>) => onUpdate((d) => updateStep(d, id, patch));
  const others = def.steps.map((s) => String(s.id)).filter((x) => x !== id);
  const needs = needsOf(step);
  const mainValue = main ? step[main.key] : undefined;

  return (
    <section aria-label={`Settings of step ${id}`} className="grid gap-3 rounded-md border border-border p-3" data-testid="step-settings">
      <div className="flex items-center justify-between gap-2">
        <h3 className="text-sm font-semibold">Step {id}</h3>
        {!readOnly ? (
          <Button
            size="sm"
            variant="ghost"
            className="text-destructive"
            onClick={() => {
              onUpdate((d) => removeStep(d, id));
              onSelect(null);
            }}
          >
            <Trash2 /> Remove step
          </Button>
        ) : null}
      </div>
      {problems.length ? (
        <ul className="grid gap-1 text-xs text-destructive" data-testid="step-problems">
          {problems.map((p, i) => (
            <li key={i}>
              <code>{p.path ?? p.field}</code> {p.code}
              {p.message ? `: ${p.message}` : ''}
            </li>
          ))}
        </ul>
      ) : null}
      <div className="grid gap-3 sm:grid-cols-2">
        <Field id="step-id" label="Id" error={fmt(errFor('id'))} hint="letters, digits, _ and -">
          {(p) => (
            <Input
              {...p}
              value={idText}
              readOnly={readOnly}
              onChange={(e) => setIdText(e.target.value)}
              onBlur={() => {
                const v = idText.trim();
                if (v && v !== id && !others.includes(v)) {
                  set({ id: v });
                  onSelect(v);
                } else setIdText(id);
              }}
            />
          )}
        </Field>
        <Field id="step-type" label="Type" error={fmt(errFor('type'))}>
          {(p) => (
            <NativeSelect {...p} value={String(step.type)} disabled={readOnly} onChange={(e) => set({ type: e.target.value })}>
              {STEP_TYPES.map((t) => (
                <option key={t} value={t}>
                  {t}
                </option>
              ))}
            </NativeSelect>
          )}
        </Field>
        {main ? (
          <Field id="step-main" label={main.label} hint={main.hint} error={fmt(errFor(main.key))}>
            {(p) => (
              <DraftInput
                key={id}
                {...p}
                readOnly={readOnly || (mainValue !== undefined && typeof mainValue !== 'string')}
                value={typeof mainValue === 'string' ? mainValue : mainValue === undefined ? '' : JSON.stringify(mainValue)}
                onCommit={(v) => set({ [main.key]: v })}
              />
            )}
          </Field>
        ) : null}
        <Field id="step-name" label="Name" hint="for people" error={fmt(errFor('name'))}>
          {(p) => <DraftInput key={id} {...p} readOnly={readOnly} value={typeof step.name === 'string' ? step.name : ''} onCommit={(v) => set({ name: v })} />}
        </Field>
        <Field id="step-timeout" label="Timeout" hint="a duration; empty: none" error={fmt(errFor('timeout'))}>
          {(p) => <DraftInput key={id} {...p} readOnly={readOnly} value={typeof step.timeout === 'string' ? step.timeout : ''} onCommit={(v) => set({ timeout: v })} />}
        </Field>
        <Field id="step-if" label="Run if" hint="an expression; empty: always" error={fmt(errFor('if'))}>
          {(p) => <DraftInput key={id} {...p} readOnly={readOnly} value={typeof step.if === 'string' ? step.if : ''} onCommit={(v) => set({ if: v })} />}
        </Field>
        {type === 'approval' ? (
          <Field id="step-approvers" label="Approvers" hint="roles, comma separated; empty: admin, operator" error={fmt(errFor('approvers'))}>
            {(p) => (
              <DraftInput
                key={id}
                {...p}
                readOnly={readOnly}
                value={Array.isArray(step.approvers) ? (step.approvers as string[]).join(', ') : ''}
                onCommit={(v) => {
                  const roles = v.split(',').map((r) => r.trim()).filter(Boolean);
                  set({ approvers: roles.length ? roles : undefined });
                }}
              />
            )}
          </Field>
        ) : null}
      </div>
      <fieldset className="grid gap-1">
        <legend className="mb-1 text-sm font-medium">Needs {errFor('needs') ? <span className="text-xs text-destructive">({fmt(errFor('needs'))})</span> : null}</legend>
        <div className="flex flex-wrap items-center gap-2">
          {needs.length === 0 ? <span className="text-xs text-muted-foreground">none: it starts at once</span> : null}
          {needs.map((n) => (
            <span key={n} className="inline-flex items-center gap-1 rounded-full border border-border px-2 py-0.5 text-xs" data-need={n}>
              {n}
              {!readOnly ? (
                <button type="button" className="rounded-full px-1 hover:bg-muted" aria-label={`Remove need ${n}`} onClick={() => onUpdate((d) => disconnect(d, n, id))}>
                  ×
                </button>
              ) : null}
            </span>
          ))}
          {!readOnly && others.some((o) => !needs.includes(o)) ? (
            <NativeSelect
              aria-label={`Add a need to ${id}`}
              className="h-8 w-44 text-xs"
              value=""
              onChange={(e) => {
                const need = e.target.value;
                if (need) onUpdate((d) => connect(d, need, id));
              }}
            >
              <option value="">add a need…</option>
              {others
                .filter((o) => !needs.includes(o))
                .map((o) => (
                  <option key={o} value={o}>
                    {o}
                  </option>
                ))}
            </NativeSelect>
          ) : null}
        </div>
      </fieldset>
      <p className="text-xs text-muted-foreground">Everything else (inputs, retry, forEach, …) is edited in the YAML.</p>
    </section>
  );
}

// ---- running ----

function RunDialog({ workflow, def, onClose, onStarted }: { workflow: Workflow; def: Definition | null; onClose: () => void; onStarted: (x: Execution) => void }) {
  const specs = declaredInputs(def);
  const [values, setValues] = React.useState<Record<string, string>>(() =>
    Object.fromEntries(specs.map((s) => [s.name, s.default === undefined ? '' : typeof s.default === 'string' ? s.default : JSON.stringify(s.default)])),
  );
  const [errors, setErrors] = React.useState<Record<string, string>>({});
  const [general, setGeneral] = React.useState<string | null>(null);
  const [busy, setBusy] = React.useState(false);

  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    setErrors({});
    setGeneral(null);
    const inputs: Record<string, unknown> = {};
    const local: Record<string, string> = {};
    for (const s of specs) {
      const text = values[s.name] ?? '';
      if (text === '' && s.type !== 'boolean') continue; // the server fills defaults and reports missing ones
      try {
        inputs[s.name] = coerceInput(s, text);
      } catch (err) {
        local[s.name] = (err as Error).message;
      }
    }
    if (Object.keys(local).length) return setErrors(local);
    setBusy(true);
    try {
      const { data } = await api.workflows.execute(workflow.id, inputs);
      onStarted(data);
    } catch (err) {
      const ae = err as ApiError;
      const fe: Record<string, string> = {};
      for (const p of ae.problems) fe[p.field.replace(/^inputs\./, '')] = `${p.code}${p.message ? `: ${p.message}` : ''}`;
      setErrors(fe);
      if (!Object.keys(fe).length || Object.keys(fe).some((k) => !specs.some((s) => s.name === k))) setGeneral(ae.problems.length ? JSON.stringify(ae.problems) : ae.message);
    } finally {
      setBusy(false);
    }
  };

  return (
    <Dialog open onOpenChange={(o) => !o && onClose()}>
      <DialogContent aria-describedby="run-desc">
        <DialogHeader>
          <DialogTitle>Run {workflow.name}</DialogTitle>
          <DialogDescription id="run-desc">Starts version {workflow.version} with these inputs.</DialogDescription>
        </DialogHeader>
        <form onSubmit={submit} className="grid gap-3">
          {specs.length === 0 ? <p className="text-sm text-muted-foreground">This workflow declares no inputs.</p> : null}
          {specs.map((s) => (
            <Field
              key={s.name}
              id={`input-${s.name}`}
              label={`${s.name}${s.required ? ' *' : ''}`}
              hint={`${s.type}${s.description ? ` · ${s.description}` : ''}`}
              error={errors[s.name]}
            >
              {(p) =>
                s.type === 'boolean' ? (
                  <NativeSelect {...p} value={values[s.name] || 'false'} onChange={(e) => setValues({ ...values, [s.name]: e.target.value })}>
                    <option value="false">false</option>
                    <option value="true">true</option>
                  </NativeSelect>
                ) : s.enum ? (
                  <NativeSelect {...p} value={values[s.name]} onChange={(e) => setValues({ ...values, [s.name]: e.target.value })}>
                    <option value="">—</option>
                    {s.enum.map((v) => (
                      <option key={String(v)} value={typeof v === 'string' ? v : JSON.stringify(v)}>
                        {String(v)}
                      </option>
                    ))}
                  </NativeSelect>
                ) : (
                  <Input {...p} value={values[s.name]} onChange={(e) => setValues({ ...values, [s.name]: e.target.value })} />
                )
              }
            </Field>
          ))}
          {general ? <p className="text-sm text-destructive">{general}</p> : null}
          <DialogFooter>
            <Button type="button" variant="outline" onClick={onClose}>
              Close
            </Button>
            <Button type="submit" disabled={busy} data-testid="run-submit">
              <Play /> Run
            </Button>
          </DialogFooter>
        </form>
      </DialogContent>
    </Dialog>
  );
}

function Runs({ workflow, def, execution, onOpen }: { workflow: Workflow; def: Definition | null; execution: string | null; onOpen: (id: string | null) => void }) {
  const runs = useAsync(() => api.executions.list({ workflowId: workflow.id, limit: 50 }).then((r) => r.data), [workflow.id]);
  const [statuses, setStatuses] = React.useState<Record<string, StepStatus>>({});
  useLiveEvents({ topics: ['workflow.progress.update'], workflowId: workflow.id }, (e) => {
    const d = e.data as { executionId: string; status: Execution['status'] };
    runs.setData((xs) => {
      if (!xs) return xs;
      if (!xs.some((x) => x.id === d.executionId)) {
        runs.reload();
        return xs;
      }
      return xs.map((x) => (x.id === d.executionId ? { ...x, status: d.status } : x));
    });
  });
  return (
    <div className="grid gap-4 lg:grid-cols-[16rem_1fr]">
      <div>
        {runs.loading && !runs.data ? (
          <LoadingState label="Loading runs" rows={2} />
        ) : runs.error ? (
          <ErrorState error={runs.error} onRetry={runs.reload} />
        ) : !runs.data?.length ? (
          <EmptyState title="No runs yet" />
        ) : (
          <ul className="grid gap-1" data-testid="run-list" aria-label="Runs">
            {runs.data.map((x) => (
              <li key={x.id}>
                <button
                  type="button"
                  onClick={() => onOpen(x.id)}
                  aria-current={execution === x.id ? 'true' : undefined}
                  className={cn('flex w-full items-center justify-between gap-2 rounded-md px-2 py-1.5 text-left text-xs hover:bg-muted', execution === x.id && 'bg-muted')}
                >
                  <span>
                    {timeAgo(x.createdAt)} · v{x.workflowVersion}
                  </span>
                  <Badge variant={EXEC_VARIANT[x.status]}>{x.status}</Badge>
                </button>
              </li>
            ))}
          </ul>
        )}
      </div>
      <div className="grid gap-3">
        {execution ? (
          <>
            {def ? <WorkflowCanvas def={def} statuses={statuses} readOnly className="h-[260px]" /> : null}
            <WorkflowTimeline key={execution} executionId={execution} def={def} onStatuses={setStatuses} />
          </>
        ) : (
          <EmptyState title="Pick a run">Its steps show here and move live.</EmptyState>
        )}
      </div>
    </div>
  );
}

// ---- the editor ----

function Editor({ workflow, onSaved, go }: { workflow: Workflow | null; onSaved: (w: Workflow) => void; go: (p: Partial<Place>) => void }) {
  const { role } = useSession();
  const toast = useToast();
  const readOnly = !can(role, 'workflows.write') || workflow?.status === 'archived';
  const initial = workflow?.definition ?? STARTER;
  const [text, setText] = React.useState(initial);
  const [def, setDef] = React.useState<Definition>(() => parseDefinition(initial).def ?? { steps: [] });
  const [syntax, setSyntax] = React.useState<ReturnType<typeof parseDefinition>['error']>(() => parseDefinition(initial).error);
  const [problems, setProblems] = React.useState<DefinitionProblem[]>([]);
  const [selected, setSelected] = React.useState<string | null>(null);
  const [addType, setAddType] = React.useState<StepType>('wait');
  const [saving, setSaving] = React.useState(false);
  const [running, setRunning] = React.useState(false);
  const [dirty, setDirty] = React.useState(!workflow);

  // Which side was edited last: after a canvas edit the text is rendered from the definition.
  const [source, setSource] = React.useState<'text' | 'canvas'>('text');
  // Canvas and step-settings edits are functions of the newest definition: a step field hands
  // its text on after a pause, and an edit made meanwhile must not undo it.
  const updateDef = React.useCallback((edit: (d: Definition) => Definition) => {
    setDef(edit);
    setSource('canvas');
    setSyntax(null);
    setDirty(true);
  }, []);

  const fromText = (t: string) => {
    setText(t);
    setSource('text');
    setDirty(true);
    const r = parseDefinition(t);
    setSyntax(r.error);
    if (r.def) setDef(r.def);
  };

  const byStep = React.useMemo(() => problemsByStep(def, problems), [def, problems]);
  // Rendering and laying out a large definition's text is slow: after canvas edits the text
  // pane follows once they pause for 200 ms, so the canvas and the fields answer at once.
  const [textDef, setTextDef] = React.useState(def);
  React.useEffect(() => {
    if (source !== 'canvas') return;
    const t = setTimeout(() => React.startTransition(() => setTextDef(def)), 200);
    return () => clearTimeout(t);
  }, [def, source]);
  const shownText = React.useMemo(() => (source === 'canvas' ? toYaml(textDef) : text), [source, textDef, text]);
  const currentText = () => (source === 'canvas' ? toYaml(def) : text);

  const save = async () => {
    setSaving(true);
    setProblems([]);
    try {
      const body = currentText();
      const { data } = workflow ? await api.workflows.update(workflow.id, body, workflow.version) : await api.workflows.create(body);
      toast({ title: `Saved ${data.name} (version ${data.version})`, variant: 'success' });
      setDirty(false);
      onSaved({ ...data, definition: body });
    } catch (e) {
      const ae = e as ApiError;
      if (ae.status === 422 && Array.isArray(ae.details)) {
        setProblems(ae.details as DefinitionProblem[]);
        toast({ title: 'The definition has problems', description: `${(ae.details as unknown[]).length} found; they are marked on the steps.`, variant: 'destructive' });
      } else {
        toast({ title: 'Could not save', description: ae.message, variant: 'destructive' });
      }
    } finally {
      setSaving(false);
    }
  };

  const archive = async () => {
    if (!workflow) return;
    try {
      await api.workflows.archive(workflow.id);
      toast({ title: `${workflow.name} archived`, variant: 'success' });
      go({ id: null, execution: null });
      window.location.reload();
    } catch (e) {
      toast({ title: 'Could not archive', description: (e as ApiError).message, variant: 'destructive' });
    }
  };

  return (
    <div className="grid gap-3">
      {!readOnly ? (
        <div className="flex flex-wrap items-end gap-2" role="toolbar" aria-label="Workflow editor">
          <div className="grid gap-1">
            <label htmlFor="add-type" className="text-xs font-medium">
              Step type
            </label>
            <NativeSelect id="add-type" className="h-9 w-36" value={addType} onChange={(e) => setAddType(e.target.value as StepType)}>
              {STEP_TYPES.map((t) => (
                <option key={t} value={t}>
                  {t}
                </option>
              ))}
            </NativeSelect>
          </div>
          <Button
            variant="outline"
            data-testid="add-step"
            onClick={() => {
              const r = addStep(def, addType);
              updateDef((d) => (d === def ? r.def : addStep(d, addType).def));
              setSelected(r.id);
            }}
          >
            <Plus /> Add step
          </Button>
          <div className="ml-auto flex gap-2">
            {workflow ? (
              <Button variant="ghost" className="text-destructive" onClick={() => void archive()}>
                <Trash2 /> Archive
              </Button>
            ) : null}
            {workflow ? (
              <Button variant="outline" onClick={() => setRunning(true)} disabled={dirty} title={dirty ? 'Save first' : undefined} data-testid="run-workflow">
                <Play /> Run…
              </Button>
            ) : null}
            <Button onClick={() => void save()} disabled={saving || !!syntax} data-testid="save-workflow">
              <Save /> {saving ? 'Saving…' : workflow ? 'Save new version' : 'Create'}
            </Button>
          </div>
        </div>
      ) : workflow?.status === 'archived' ? (
        <p className="text-sm text-muted-foreground">This workflow is archived: it can be read but not changed or run.</p>
      ) : null}
      {problems.length ? (
        <div className="rounded-md border border-red-200 bg-red-50 p-3 text-sm" role="alert" data-testid="definition-problems">
          <p className="mb-1 font-medium text-red-800">The server refused the definition:</p>
          <ul className="grid gap-0.5 text-xs text-red-800">
            {problems.map((p, i) => {
              const step = /^steps\[(\d+)\]/.exec(p.path ?? p.field ?? '');
              const sid = step ? def.steps[Number(step[1])]?.id : undefined;
              return (
                <li key={i}>
                  {sid ? (
                    <button type="button" className="underline" onClick={() => setSelected(String(sid))}>
                      {String(sid)}
                    </button>
                  ) : null}{' '}
                  <code>{p.path ?? p.field}</code> {p.code}
                  {p.message ? `: ${p.message}` : ''}
                  {p.line ? ` (line ${p.line}, column ${p.column})` : ''}
                </li>
              );
            })}
          </ul>
        </div>
      ) : null}
      <div className="grid gap-3 xl:grid-cols-[minmax(0,3fr)_minmax(0,2fr)]">
        <div className="grid content-start gap-3">
          <WorkflowCanvas def={def} problems={byStep} readOnly={readOnly} selected={selected} onSelect={setSelected} onChange={updateDef} className="xl:h-[520px]" />
          {selected ? (
            <StepSettings def={def} id={selected} readOnly={readOnly} problems={byStep[selected] ?? []} onUpdate={updateDef} onSelect={setSelected} />
          ) : (
            <p className="text-xs text-muted-foreground">
              {readOnly ? 'Select a step to see its settings.' : 'Select a step to edit it; drag from a step’s right handle to another’s left to add a need; Delete removes the selection.'}
            </p>
          )}
        </div>
        <div className="grid content-start gap-1.5">
          <label htmlFor="wf-yaml" className="text-sm font-medium">
            YAML
          </label>
          <Textarea
            id="wf-yaml"
            data-testid="wf-yaml"
            spellCheck={false}
            readOnly={readOnly}
            value={shownText}
            onChange={(e) => fromText(e.target.value)}
            aria-invalid={!!syntax}
            aria-describedby={syntax ? 'wf-yaml-error' : undefined}
            className="h-[420px] font-mono text-xs [contain:strict] xl:h-[520px]"
          />
          {syntax ? (
            <p id="wf-yaml-error" className="text-xs text-destructive" data-testid="wf-yaml-error">
              {syntax.line ? `line ${syntax.line}, column ${syntax.column}: ` : ''}
              {syntax.message} (the canvas shows the last text that parsed)
            </p>
          ) : null}
        </div>
      </div>
      {running && workflow ? (
        <RunDialog
          workflow={workflow}
          def={parseDefinition(workflow.definition ?? '').def}
          onClose={() => setRunning(false)}
          onStarted={(x) => {
            setRunning(false);
            go({ tab: 'runs', execution: x.id });
          }}
        />
      ) : null}
    </div>
  );
}

function WorkflowView({ id, place, go, onChanged }: { id: string; place: Place; go: (p: Partial<Place>) => void; onChanged: () => void }) {
  const wf = useAsync<Workflow | null>(() => (id === NEW ? Promise.resolve(null) : api.workflows.get(id).then((r) => r.data)), [id]);
  if (wf.loading && wf.data === undefined) return <LoadingState label="Loading the workflow" rows={4} />;
  if (wf.error) return <ErrorState error={wf.error} onRetry={wf.reload} />;
  const w = wf.data ?? null;
  const def = w?.definition ? parseDefinition(w.definition).def : null;
  return (
    <Card>
      <CardHeader className="flex flex-row flex-wrap items-center gap-2 space-y-0">
        <CardTitle className="text-base" data-testid="workflow-title">
          {w ? w.name : 'New workflow'}
        </CardTitle>
        {w ? (
          <>
            <Badge variant={w.status === 'active' ? 'success' : 'outline'}>{w.status}</Badge>
            <span className="text-xs text-muted-foreground">version {w.version}</span>
          </>
        ) : null}
      </CardHeader>
      <CardContent>
        {w ? (
          <Tabs value={place.tab} onValueChange={(v) => go({ tab: v as Place['tab'], execution: v === 'editor' ? null : place.execution })}>
            <TabsList>
              <TabsTrigger value="editor">Definition</TabsTrigger>
              <TabsTrigger value="runs">Runs</TabsTrigger>
            </TabsList>
            <TabsContent value="editor">
              <Editor
                key={`${w.id}:${w.version}`}
                workflow={w}
                go={go}
                onSaved={(saved) => {
                  wf.setData(saved);
                  onChanged();
                }}
              />
            </TabsContent>
            <TabsContent value="runs">
              <Runs workflow={w} def={def} execution={place.execution} onOpen={(x) => go({ execution: x })} />
            </TabsContent>
          </Tabs>
        ) : (
          <Editor
            workflow={null}
            go={go}
            onSaved={(saved) => {
              onChanged();
              go({ id: saved.id, tab: 'editor', execution: null });
            }}
          />
        )}
      </CardContent>
    </Card>
  );
}

function Workflows() {
  const [place, go] = usePlace();
  const [listKey, setListKey] = React.useState(0);
  return (
    <div className="grid gap-4 lg:grid-cols-[15rem_minmax(0,1fr)]">
      <WorkflowList key={listKey} selected={place.id} onOpen={(id) => go({ id, execution: null, tab: 'editor' })} />
      {place.id ? (
        <WorkflowView key={place.id} id={place.id} place={place} go={go} onChanged={() => setListKey((k) => k + 1)} />
      ) : (
        <Card data-state="empty">
          <CardContent className="flex flex-col items-center gap-2 p-10 text-center text-sm text-muted-foreground">
            <GitBranch className="size-8" aria-hidden="true" />
            Pick a workflow to see its steps, edit it on the canvas or in YAML, and follow its runs live.
          </CardContent>
        </Card>
      )}
    </div>
  );
}

export default function WorkflowsPage() {
  return (
    <AppShell page="workflows" title="Workflows">
      <Workflows />
    </AppShell>
  );
}
