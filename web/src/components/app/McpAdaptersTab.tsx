// /admin → MCP adapters: register a server, check its health, read its catalog (held tools
// marked, approve them), try a tool and see recent calls. Live through tool.* events.
import * as React from 'react';
import { Activity, Check, Play, Plus, Trash2 } from 'lucide-react';
import { ApiError, can, type McpTool, type ToolAdapter, type ToolAdapterConfig, type ToolCall } from '../../lib/api';
import { api } from '../../lib/client';
import { useAsync, useLiveEvents } from '../../lib/hooks';
import { cn, timeAgo } from '../../lib/utils';
import { Badge } from '../ui/badge';
import { Button } from '../ui/button';
import { Input, NativeSelect, Textarea } from '../ui/input';
import { Field } from '../ui/label';
import { Table, TableBody, TableCell, TableHead, TableHeader, TableRow } from '../ui/table';
import { useToast } from '../ui/toast';
import { useSession } from './AppShell';
import { EmptyState, ErrorState, LoadingState } from './states';

const STATUS_VARIANT = { healthy: 'success', unhealthy: 'destructive', unknown: 'secondary' } as const;

function lines(s: string): string[] {
  return s
    .split('\n')
    .map((x) => x.trim())
    .filter(Boolean);
}

function RegisterForm({ onDone }: { onDone: (a: ToolAdapter) => void }) {
  const toast = useToast();
  const [f, setF] = React.useState({ name: '', transport: 'stdio' as 'stdio' | 'http', command: '', args: '', sandbox: true, readOnlyPaths: '', url: '' });
  const [errors, setErrors] = React.useState<Record<string, string>>({});
  const [busy, setBusy] = React.useState(false);
  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    setErrors({});
    const config: ToolAdapterConfig =
      f.transport === 'stdio'
        ? { transport: 'stdio', command: f.command, args: lines(f.args), sandbox: f.sandbox, ...(lines(f.readOnlyPaths).length ? { readOnlyPaths: lines(f.readOnlyPaths) } : {}) }
        : { transport: 'http', url: f.url };
    setBusy(true);
    try {
      const { data } = await api.tools.register(f.name, config);
      toast({ title: `Registered ${data.name}`, description: `status ${data.status}`, variant: 'success' });
      onDone(data);
    } catch (err) {
      const ae = err as ApiError;
      const fe: Record<string, string> = {};
      for (const p of ae.problems) fe[p.field.replace(/^config\./, '')] ??= `${p.code}${p.message ? `: ${p.message}` : ''}`;
      if (!Object.keys(fe).length) fe._ = ae.message;
      setErrors(fe);
    } finally {
      setBusy(false);
    }
  };
  const set = (k: keyof typeof f) => (e: React.ChangeEvent<HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement>) => setF({ ...f, [k]: e.target.value });
  return (
    <form onSubmit={submit} className="grid gap-3 rounded-md border border-border p-3" aria-label="Register an MCP server" data-testid="mcp-register">
      <div className="grid gap-3 sm:grid-cols-2">
        <Field id="mcp-name" label="Name" error={errors.name} hint="letters, digits, - and _">
          {(p) => <Input {...p} value={f.name} onChange={set('name')} required />}
        </Field>
        <Field id="mcp-transport" label="Transport" error={errors.transport}>
          {(p) => (
            <NativeSelect {...p} value={f.transport} onChange={set('transport')}>
              <option value="stdio">stdio (a program devplane starts)</option>
              <option value="http">http (Streamable HTTP endpoint)</option>
            </NativeSelect>
          )}
        </Field>
        {f.transport === 'stdio' ? (
          <>
            <Field id="mcp-command" label="Command" error={errors.command}>
              {(p) => <Input {...p} value={f.command} onChange={set('command')} placeholder="node" />}
            </Field>
            <Field id="mcp-args" label="Arguments (one per line)" error={errors.args}>
              {(p) => <Textarea {...p} rows={2} value={f.args} onChange={set('args')} className="font-mono text-xs" />}
            </Field>
            <Field id="mcp-ro" label="Read-only host folders (one per line)" error={errors.readOnlyPaths} hint="e.g. the server's node_modules">
              {(p) => <Textarea {...p} rows={2} value={f.readOnlyPaths} onChange={set('readOnlyPaths')} className="font-mono text-xs" />}
            </Field>
            <label className="inline-flex items-center gap-2 self-center text-sm">
              <input type="checkbox" checked={f.sandbox} onChange={(e) => setF({ ...f, sandbox: e.target.checked })} /> Run in the sandbox (no network)
            </label>
          </>
        ) : (
          <Field id="mcp-url" label="URL" error={errors.url}>
            {(p) => <Input {...p} value={f.url} onChange={set('url')} placeholder="http://127.0.0.1:3001/mcp" />}
          </Field>
        )}
      </div>
      {errors._ ? <p className="text-sm text-destructive">{errors._}</p> : null}
      <div>
        <Button type="submit" disabled={busy || !f.name}>
          <Plus /> Register
        </Button>
      </div>
    </form>
  );
}

/** A starting point for the arguments: the required properties with empty values of their type. */
function skeleton(tool?: McpTool): string {
  const schema = tool?.inputSchema as { properties?: Record<string, { type?: string }>; required?: string[] } | undefined;
  const out: Record<string, unknown> = {};
  for (const k of schema?.required ?? []) {
    const t = schema?.properties?.[k]?.type;
    out[k] = t === 'number' || t === 'integer' ? 0 : t === 'boolean' ? false : t === 'object' ? {} : t === 'array' ? [] : '';
  }
  return JSON.stringify(out, null, 2);
}

function TryTool({ adapter, tools, onCalled }: { adapter: ToolAdapter; tools: McpTool[]; onCalled: () => void }) {
  const [name, setName] = React.useState(() => tools.find((t) => !t.held)?.name ?? tools[0]?.name ?? '');
  const tool = tools.find((t) => t.name === name);
  const [args, setArgs] = React.useState(() => skeleton(tool));
  const [result, setResult] = React.useState<ToolCall | null>(null);
  const [error, setError] = React.useState<string | null>(null);
  const [busy, setBusy] = React.useState(false);
  const call = async (e: React.FormEvent) => {
    e.preventDefault();
    setError(null);
    setResult(null);
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(args || '{}');
    } catch (err) {
      setError(`arguments: not valid JSON (${(err as Error).message})`);
      return;
    }
    setBusy(true);
    try {
      const { data } = await api.tools.execute(adapter.id, name, parsed);
      setResult(data);
    } catch (err) {
      const ae = err as ApiError;
      setError(ae.problems.length ? ae.problems.map((p) => `${p.field}: ${p.code}${p.message ? ` (${p.message})` : ''}`).join('; ') : `${ae.code}: ${ae.message}`);
    } finally {
      setBusy(false);
      onCalled();
    }
  };
  return (
    <form onSubmit={call} className="grid gap-2" aria-label="Try a tool" data-testid="try-tool">
      <div className="grid gap-2 sm:grid-cols-[14rem_1fr]">
        <Field id="try-tool-name" label="Tool">
          {(p) => (
            <NativeSelect
              {...p}
              value={name}
              onChange={(e) => {
                setName(e.target.value);
                setArgs(skeleton(tools.find((t) => t.name === e.target.value)));
              }}
            >
              {tools.map((t) => (
                <option key={t.name} value={t.name}>
                  {t.name}
                  {t.held ? ' (held)' : ''}
                </option>
              ))}
            </NativeSelect>
          )}
        </Field>
        <Field id="try-tool-args" label="Arguments (JSON)" hint={tool?.description}>
          {(p) => <Textarea {...p} rows={3} value={args} onChange={(e) => setArgs(e.target.value)} className="font-mono text-xs" />}
        </Field>
      </div>
      <div>
        <Button type="submit" disabled={busy || !name} data-testid="call-tool">
          <Play /> Call {name}
        </Button>
      </div>
      {error ? (
        <p className="text-sm text-destructive" data-testid="tool-error">
          {error}
        </p>
      ) : null}
      {result ? (
        <div className="grid gap-1 text-xs" data-testid="tool-result" data-status={result.status}>
          <div className="flex items-center gap-2">
            <Badge variant={result.status === 'succeeded' ? 'success' : 'destructive'}>{result.status}</Badge>
            {result.durationMs !== undefined ? <span className="text-muted-foreground">{result.durationMs} ms</span> : null}
          </div>
          {result.result?.content?.map((c, i) =>
            c.type === 'text' ? (
              <pre key={i} className="whitespace-pre-wrap break-all rounded bg-muted p-2">
                {c.text}
              </pre>
            ) : (
              <pre key={i} className="rounded bg-muted p-2">
                [{c.type}]
              </pre>
            ),
          )}
          {result.result?.structuredContent !== undefined ? (
            <pre className="overflow-auto rounded bg-muted p-2">{JSON.stringify(result.result.structuredContent, null, 2)}</pre>
          ) : null}
        </div>
      ) : null}
    </form>
  );
}

function AdapterDetails({ adapter, onChanged, onRemoved }: { adapter: ToolAdapter; onChanged: () => void; onRemoved: () => void }) {
  const { role } = useSession();
  const toast = useToast();
  const catalog = useAsync(() => api.tools.catalog(adapter.id).then((r) => r.data), [adapter.id, adapter.version, adapter.heldTools.join(',')]);
  const calls = useAsync(() => api.tools.calls(adapter.id, { limit: 10 }).then((r) => r.data), [adapter.id]);
  const [health, setHealth] = React.useState<string | null>(null);
  useLiveEvents({ topics: ['tool.execution.result'] }, (e) => {
    if ((e.data as { adapterId?: string }).adapterId === adapter.id) calls.reload();
  });

  const check = async () => {
    setHealth('checking…');
    try {
      const { data } = await api.tools.health(adapter.id);
      setHealth(`${data.status}${data.latencyMs !== null ? ` · ${data.latencyMs.toFixed(1)} ms` : ''}${data.reason ? ` · ${data.reason}` : ''}`);
      onChanged();
    } catch (e) {
      setHealth((e as ApiError).message);
    }
  };
  const approve = async () => {
    try {
      await api.tools.approve(adapter.id);
      toast({ title: 'Held tools approved', variant: 'success' });
      onChanged();
      catalog.reload();
    } catch (e) {
      toast({ title: 'Could not approve', description: (e as ApiError).message, variant: 'destructive' });
    }
  };
  const remove = async () => {
    try {
      await api.tools.remove(adapter.id);
      toast({ title: `${adapter.name} removed`, variant: 'success' });
      onRemoved();
    } catch (e) {
      toast({ title: 'Could not remove', description: (e as ApiError).message, variant: 'destructive' });
    }
  };

  return (
    <section className="grid gap-3 rounded-md border border-border p-3" aria-label={`Adapter ${adapter.name}`} data-testid="mcp-adapter-details">
      <div className="flex flex-wrap items-center gap-2">
        <h3 className="font-semibold">{adapter.name}</h3>
        <Badge variant={STATUS_VARIANT[adapter.status]}>{adapter.status}</Badge>
        <span className="text-xs text-muted-foreground">
          {adapter.config.transport === 'stdio' ? [adapter.config.command, ...(adapter.config.args ?? [])].join(' ') : adapter.config.url}
        </span>
        <div className="ml-auto flex gap-2">
          <Button size="sm" variant="outline" onClick={() => void check()} data-testid="check-health">
            <Activity /> Check health
          </Button>
          {can(role, 'admin') ? (
            <Button size="sm" variant="ghost" className="text-destructive" onClick={() => void remove()}>
              <Trash2 /> Remove
            </Button>
          ) : null}
        </div>
      </div>
      {health ? (
        <p className="text-xs" data-testid="health-result">
          Health: {health}
        </p>
      ) : null}
      {adapter.heldTools.length ? (
        <div className="flex flex-wrap items-center gap-2 rounded-md border border-amber-300 bg-amber-50 p-2 text-sm text-amber-900" role="status">
          Held until approved (they read differently from when they were pinned): {adapter.heldTools.join(', ')}
          {can(role, 'admin') ? (
            <Button size="sm" onClick={() => void approve()}>
              <Check /> Approve
            </Button>
          ) : null}
        </div>
      ) : null}
      <h4 className="text-sm font-medium">Catalog</h4>
      {catalog.loading && !catalog.data ? (
        <LoadingState label="Loading the catalog" rows={2} />
      ) : catalog.error ? (
        <ErrorState error={catalog.error} onRetry={catalog.reload} title="The server cannot be reached" />
      ) : !catalog.data?.length ? (
        <EmptyState title="The server lists no tools" />
      ) : (
        <>
          <div className="max-h-64 overflow-auto">
            <Table data-testid="mcp-catalog">
              <TableHeader>
                <TableRow>
                  <TableHead>Tool</TableHead>
                  <TableHead>Description</TableHead>
                  <TableHead>Pin</TableHead>
                </TableRow>
              </TableHeader>
              <TableBody>
                {catalog.data.map((t) => (
                  <TableRow key={t.name} data-tool={t.name}>
                    <TableCell className="font-mono text-xs">{t.name}</TableCell>
                    <TableCell className="max-w-md truncate text-xs" title={t.description}>
                      {t.title ? `${t.title}: ` : ''}
                      {t.description}
                    </TableCell>
                    <TableCell>{t.held ? <Badge variant="warning">held</Badge> : <Badge variant="success">pinned</Badge>}</TableCell>
                  </TableRow>
                ))}
              </TableBody>
            </Table>
          </div>
          {can(role, 'tools.call') ? <TryTool key={adapter.id} adapter={adapter} tools={catalog.data} onCalled={calls.reload} /> : null}
        </>
      )}
      <h4 className="text-sm font-medium">Recent calls</h4>
      {calls.error ? (
        <ErrorState error={calls.error} onRetry={calls.reload} />
      ) : !calls.data?.length ? (
        <p className="text-xs text-muted-foreground">{calls.loading ? 'Loading…' : 'No calls yet.'}</p>
      ) : (
        <ul className="grid gap-1 text-xs" data-testid="mcp-calls">
          {calls.data.map((c) => (
            <li key={c.id} className="flex flex-wrap gap-2">
              <code>{c.tool}</code>
              <Badge variant={c.status === 'succeeded' ? 'success' : c.status === 'tool_error' ? 'warning' : 'destructive'}>{c.status}</Badge>
              <span className="text-muted-foreground">
                {c.caller} · {timeAgo(c.executedAt)}
              </span>
              {c.error ? <span className="text-destructive">{c.error}</span> : null}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

export function McpAdaptersTab() {
  const { role } = useSession();
  const list = useAsync(() => api.tools.list().then((r) => r.data), []);
  const [selected, setSelected] = React.useState<string | null>(null);
  const [registering, setRegistering] = React.useState(false);
  useLiveEvents({ topics: ['tool.adapter.*', 'tool.catalog.*'] }, () => list.reload());
  const adapter = list.data?.find((a) => a.id === selected) ?? null;
  return (
    <div className="grid gap-3">
      <div className="flex items-center justify-between gap-2">
        <p className="text-sm text-muted-foreground">MCP servers devplane calls tools on. Registering one starts a program on the server, so only admins can.</p>
        {can(role, 'admin') ? (
          <Button size="sm" variant={registering ? 'outline' : 'default'} onClick={() => setRegistering((r) => !r)} data-testid="mcp-new">
            <Plus /> {registering ? 'Close' : 'Register'}
          </Button>
        ) : null}
      </div>
      {registering ? (
        <RegisterForm
          onDone={(a) => {
            setRegistering(false);
            list.setData((xs) => [...(xs ?? []).filter((x) => x.id !== a.id), a]);
            setSelected(a.id);
          }}
        />
      ) : null}
      {list.loading && !list.data ? (
        <LoadingState label="Loading MCP adapters" rows={2} />
      ) : list.error ? (
        <ErrorState error={list.error} onRetry={list.reload} />
      ) : !list.data?.length ? (
        <EmptyState title="No MCP servers registered" />
      ) : (
        <Table data-testid="mcp-adapters">
          <TableHeader>
            <TableRow>
              <TableHead>Name</TableHead>
              <TableHead>Transport</TableHead>
              <TableHead>Health</TableHead>
              <TableHead>Tools</TableHead>
              <TableHead>Checked</TableHead>
            </TableRow>
          </TableHeader>
          <TableBody>
            {list.data.map((a) => (
              <TableRow key={a.id} className={cn(selected === a.id && 'bg-muted')} data-adapter={a.name} data-status={a.status}>
                <TableCell>
                  <button type="button" className="font-medium text-primary underline-offset-2 hover:underline" onClick={() => setSelected(a.id)}>
                    {a.name}
                  </button>
                </TableCell>
                <TableCell>{a.config.transport}</TableCell>
                <TableCell>
                  <Badge variant={STATUS_VARIANT[a.status]} title={a.statusReason}>
                    {a.status}
                    {a.latencyMs !== null && a.status === 'healthy' ? ` · ${a.latencyMs.toFixed(1)} ms` : ''}
                  </Badge>
                </TableCell>
                <TableCell className="text-xs">
                  {a.pinnedTools} pinned{a.heldTools.length ? <span className="text-amber-700"> · {a.heldTools.length} held</span> : null}
                </TableCell>
                <TableCell className="text-xs text-muted-foreground">{a.lastHealthCheck ? timeAgo(a.lastHealthCheck) : 'never'}</TableCell>
              </TableRow>
            ))}
          </TableBody>
        </Table>
      )}
      {adapter ? (
        <AdapterDetails
          key={adapter.id}
          adapter={adapter}
          onChanged={list.reload}
          onRemoved={() => {
            setSelected(null);
            list.reload();
          }}
        />
      ) : null}
    </div>
  );
}
