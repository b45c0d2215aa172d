import * as React from 'react';
import { ApiError, type Agent, type AgentInput, type AgentType } from '../../lib/api';
import { api } from '../../lib/client';
import { Alert, AlertDescription } from '../ui/alert';
import { Button } from '../ui/button';
import { Dialog, DialogContent, DialogDescription, DialogFooter, DialogHeader, DialogTitle } from '../ui/dialog';
import { Input, NativeSelect, Textarea } from '../ui/input';
import { Field } from '../ui/label';

// The form's own fields; each server `details[].field` maps to one of them (see fieldFor).
type FormField =
  | 'name'
  | 'type'
  | 'description'
  | 'labels'
  | 'config.command'
  | 'config.args'
  | 'config.provider'
  | 'config.model'
  | 'config.systemPrompt'
  | 'config.heartbeatSeconds'
  | 'config.timeoutSeconds'
  | 'config';

const TYPED_CONFIG_KEYS: Record<AgentType, string[]> = {
  command: ['command', 'args', 'timeoutSeconds'],
  llm: ['provider', 'model', 'systemPrompt', 'timeoutSeconds'],
  remote: ['heartbeatSeconds', 'timeoutSeconds'],
};

/** Which input shows a server problem about `field` ("" and unknown ones go to the form). */
export function fieldFor(field: string, type: AgentType): FormField | null {
  if (field === 'name' || field === 'type' || field === 'description') return field;
  if (field === 'labels' || field.startsWith('labels.') || field.startsWith('labels[')) return 'labels';
  if (field.startsWith('config.')) {
    const key = field.slice(7).split(/[.[]/)[0];
    if (TYPED_CONFIG_KEYS[type].includes(key)) return `config.${key}` as FormField;
    return 'config';
  }
  if (field === 'config') return 'config';
  return null;
}

interface FormState {
  name: string;
  type: AgentType;
  description: string;
  labels: string;
  command: string;
  args: string;
  provider: string;
  model: string;
  systemPrompt: string;
  heartbeatSeconds: string;
  timeoutSeconds: string;
  extra: string;
}

function fromAgent(a?: Agent): FormState {
  const c = (a?.config ?? {}) as Record<string, unknown>;
  const type = a?.type ?? 'command';
  const extra: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(c)) if (!TYPED_CONFIG_KEYS[type].includes(k)) extra[k] = v;
  const cmd = c.command;
  return {
    name: a?.name ?? '',
    type,
    description: a?.description ?? '',
    labels: Object.entries(a?.labels ?? {})
      .map(([k, v]) => `${k}=${v}`)
      .join('\n'),
    command: Array.isArray(cmd) ? cmd.join(' ') : typeof cmd === 'string' ? cmd : '',
    args: Array.isArray(c.args) ? (c.args as string[]).join('\n') : '',
    provider: typeof c.provider === 'string' ? c.provider : 'openai',
    model: typeof c.model === 'string' ? c.model : '',
    systemPrompt: typeof c.systemPrompt === 'string' ? c.systemPrompt : '',
    heartbeatSeconds: c.heartbeatSeconds !== undefined ? String(c.heartbeatSeconds) : '',
    timeoutSeconds: c.timeoutSeconds !== undefined ? String(c.timeoutSeconds) : '',
    extra: Object.keys(extra).length ? JSON.stringify(extra, null, 2) : '',
  };
}

/** A number when the text is one, else the text itself so the server names the problem. */
function num(s: string): unknown {
  const t = s.trim();
  if (t === '') return undefined;
  const n = Number(t);
  return Number.isFinite(n) ? n : t;
}

/** Builds the request body; problems the server cannot see (bad JSON, bad label lines) come back as errors. */
function toInput(f: FormState, editing: boolean): { input: AgentInput; errors: Partial<Record<FormField, string>> } {
  const errors: Partial<Record<FormField, string>> = {};
  const labels: Record<string, string> = {};
  f.labels
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .forEach((line, i) => {
      const eq = line.indexOf('=');
      if (eq <= 0) errors.labels = `line ${i + 1}: write key=value`;
      else labels[line.slice(0, eq).trim()] = line.slice(eq + 1).trim();
    });
  let config: Record<string, unknown> = {};
  if (f.extra.trim()) {
    try {
      const parsed = JSON.parse(f.extra);
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) errors.config = 'write a JSON object, e.g. {"network": false}';
      else config = parsed;
    } catch (e) {
      errors.config = `not valid JSON: ${(e as Error).message}`;
    }
  }
  const set = (k: string, v: unknown) => {
    if (v !== undefined && v !== '') config[k] = v;
  };
  if (f.type === 'command') {
    const words = f.command.trim().split(/\s+/).filter(Boolean);
    set('command', words.length > 1 ? words : words[0]);
    const args = f.args.split('\n').map((a) => a.trim()).filter(Boolean);
    if (args.length) config.args = args;
  } else if (f.type === 'llm') {
    set('provider', f.provider);
    set('model', f.model.trim());
    set('systemPrompt', f.systemPrompt);
  } else {
    set('heartbeatSeconds', num(f.heartbeatSeconds));
  }
  set('timeoutSeconds', num(f.timeoutSeconds));
  const input: AgentInput = { name: f.name, description: f.description, labels, config };
  if (!editing) input.type = f.type;
  return { input, errors };
}

export function AgentConfigDialog({
  open,
  onOpenChange,
  agent,
  onSaved,
}: {
  open: boolean;
  onOpenChange: (o: boolean) => void;
  /** the agent to edit; none to create one */
  agent?: Agent;
  onSaved: (a: Agent) => void;
}) {
  const editing = Boolean(agent);
  const [f, setF] = React.useState<FormState>(() => fromAgent(agent));
  const [errors, setErrors] = React.useState<Partial<Record<FormField, string>>>({});
  const [formError, setFormError] = React.useState<string | null>(null);
  const [busy, setBusy] = React.useState(false);

  React.useEffect(() => {
    if (open) {
      setF(fromAgent(agent));
      setErrors({});
      setFormError(null);
    }
  }, [open, agent]);

  const upd = (k: keyof FormState) => (e: React.ChangeEvent<HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement>) =>
    setF((s) => ({ ...s, [k]: e.target.value }));

  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    setFormError(null);
    const { input, errors: local } = toInput(f, editing);
    if (Object.keys(local).length) {
      setErrors(local);
      return;
    }
    setErrors({});
    setBusy(true);
    try {
      const { data } = agent ? await api.agents.update(agent.id, agent.version, input) : await api.agents.create(input);
      onSaved(data);
      onOpenChange(false);
    } catch (err) {
      const ae = err as ApiError;
      if (ae.code === 'validation_failed') {
        const byField: Partial<Record<FormField, string>> = {};
        const rest: string[] = [];
        for (const p of ae.problems) {
          const ff = fieldFor(p.field, f.type);
          if (ff && !byField[ff]) byField[ff] = ff === 'config' ? `${p.field}: ${p.message}` : p.message;
          else if (!ff) rest.push(p.message);
        }
        setErrors(byField);
        setFormError(rest.length ? rest.join('; ') : 'Fix the fields marked below.');
      } else if (ae.code === 'conflict') {
        setErrors({ name: ae.message });
      } else if (ae.code === 'version_conflict') {
        setFormError('Someone changed this agent while you were editing. Close the dialog and edit again to see their change.');
      } else {
        setFormError(`${ae.message} (${ae.code})`);
      }
    } finally {
      setBusy(false);
    }
  };

  return (
    <Dialog open={open} onOpenChange={onOpenChange}>
      <DialogContent className="max-w-xl" aria-describedby="agent-config-desc">
        <DialogHeader>
          <DialogTitle>{editing ? `Edit ${agent!.name}` : 'New agent'}</DialogTitle>
          <DialogDescription id="agent-config-desc">
            {editing ? 'Changes apply to the agent’s next run.' : 'An agent does the steps of workflows. Its type cannot be changed later.'}
          </DialogDescription>
        </DialogHeader>
        <form className="grid gap-4" onSubmit={submit} noValidate data-testid="agent-form">
          {formError ? (
            <Alert variant="destructive">
              <AlertDescription data-testid="form-error">{formError}</AlertDescription>
            </Alert>
          ) : null}
          <div className="grid gap-4 sm:grid-cols-2">
            <Field id="agent-name" label="Name" error={errors.name}>
              {(p) => <Input {...p} name="name" value={f.name} onChange={upd('name')} autoFocus />}
            </Field>
            <Field id="agent-type" label="Type" error={errors.type} hint={editing ? 'fixed after creation' : undefined}>
              {(p) => (
                <NativeSelect {...p} name="type" value={f.type} onChange={upd('type')} disabled={editing}>
                  <option value="command">command: runs a program</option>
                  <option value="llm">llm: a model that calls tools</option>
                  <option value="remote">remote: a worker that connects in</option>
                </NativeSelect>
              )}
            </Field>
          </div>
          <Field id="agent-description" label="Description" error={errors.description}>
            {(p) => <Textarea {...p} name="description" rows={2} value={f.description} onChange={upd('description')} />}
          </Field>
          {f.type === 'command' ? (
            <div className="grid gap-4 sm:grid-cols-2">
              <Field id="agent-command" label="Command" error={errors['config.command']} hint="e.g. make test">
                {(p) => <Input {...p} name="command" value={f.command} onChange={upd('command')} />}
              </Field>
              <Field id="agent-args" label="Arguments (one per line)" error={errors['config.args']}>
                {(p) => <Textarea {...p} name="args" rows={2} value={f.args} onChange={upd('args')} />}
              </Field>
            </div>
          ) : f.type === 'llm' ? (
            <div className="grid gap-4 sm:grid-cols-2">
              <Field id="agent-provider" label="Provider" error={errors['config.provider']}>
                {(p) => (
                  <NativeSelect {...p} name="provider" value={f.provider} onChange={upd('provider')}>
                    <option value="openai">OpenAI-compatible</option>
                    <option value="anthropic">Anthropic</option>
                  </NativeSelect>
                )}
              </Field>
              <Field id="agent-model" label="Model" error={errors['config.model']}>
                {(p) => <Input {...p} name="model" value={f.model} onChange={upd('model')} />}
              </Field>
              <div className="sm:col-span-2">
                <Field id="agent-prompt" label="System prompt" error={errors['config.systemPrompt']}>
                  {(p) => <Textarea {...p} name="systemPrompt" rows={3} value={f.systemPrompt} onChange={upd('systemPrompt')} />}
                </Field>
              </div>
            </div>
          ) : (
            <Field id="agent-heartbeat" label="Heartbeat (seconds)" error={errors['config.heartbeatSeconds']} hint="1 to 600">
              {(p) => <Input {...p} name="heartbeatSeconds" inputMode="numeric" value={f.heartbeatSeconds} onChange={upd('heartbeatSeconds')} />}
            </Field>
          )}
          <div className="grid gap-4 sm:grid-cols-2">
            <Field id="agent-timeout" label="Timeout (seconds)" error={errors['config.timeoutSeconds']} hint="1 to 604800; empty for none">
              {(p) => <Input {...p} name="timeoutSeconds" inputMode="numeric" value={f.timeoutSeconds} onChange={upd('timeoutSeconds')} />}
            </Field>
            <Field id="agent-labels" label="Labels (key=value per line)" error={errors.labels}>
              {(p) => <Textarea {...p} name="labels" rows={2} value={f.labels} onChange={upd('labels')} />}
            </Field>
          </div>
          <Field id="agent-config" label="Other settings (JSON)" error={errors.config} hint='e.g. {"network": false, "memoryMb": 512}'>
            {(p) => <Textarea {...p} name="extra" rows={3} className="font-mono text-xs" value={f.extra} onChange={upd('extra')} />}
          </Field>
          <DialogFooter>
            <Button variant="outline" onClick={() => onOpenChange(false)}>
              Cancel
            </Button>
            <Button type="submit" disabled={busy}>
              {busy ? 'Saving…' : editing ? 'Save changes' : 'Create agent'}
            </Button>
          </DialogFooter>
        </form>
      </DialogContent>
    </Dialog>
  );
}
