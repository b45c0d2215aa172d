import * as React from 'react';
import { Pencil, Play, Plus, Search, Send, Square, Trash2 } from 'lucide-react';
import { ApiError, can, type Agent, type AgentActivity, type AgentMessage, type AgentState, type AgentStatus } from '../../lib/api';
import { applyResources, applyTaskEvent, type ResourcesEventData, type TaskEventData } from '../../lib/agentActivity';
import { api } from '../../lib/client';
import { useAsync, useLiveEvents, useResync } from '../../lib/hooks';
import { timeAgo } from '../../lib/utils';
import { Badge } from '../ui/badge';
import { Button } from '../ui/button';
import { Card, CardContent, CardFooter, CardHeader, CardTitle } from '../ui/card';
import { Dialog, DialogContent, DialogDescription, DialogFooter, DialogHeader, DialogTitle } from '../ui/dialog';
import { Input, NativeSelect, Textarea } from '../ui/input';
import { Field, Label } from '../ui/label';
import { Table, TableBody, TableCell, TableHead, TableHeader, TableRow } from '../ui/table';
import { Tabs, TabsContent, TabsList, TabsTrigger } from '../ui/tabs';
import { AgentLogs, AgentMetrics } from './AgentActivity';
import { useToast } from '../ui/toast';
import { AgentConfigDialog } from './AgentConfigDialog';
import { ACTIVE_STATUSES, CardActivity } from './AgentCardActivity';
import { AppShell, useSession } from './AppShell';
import { STATUS_VARIANT, canStart, canStop } from './agentStatus';
import { EmptyState, ErrorState, LoadingState } from './states';

// Memoised on what it shows: with hundreds of agents, typing in the search must not redraw
// every card. Its handlers only close over the agent and stable setters, so an older one is
// as good as a newer one.
const AgentCard = React.memo(
  AgentCardView,
  (a, b) => a.agent === b.agent && a.activity === b.activity && a.now === b.now && a.busy === b.busy && a.canOperate === b.canOperate && a.canWrite === b.canWrite,
);

function AgentCardView({
  agent,
  activity,
  now,
  canOperate,
  canWrite,
  busy,
  onStart,
  onStop,
  onEdit,
  onOpen,
  onLogs,
}: {
  agent: Agent;
  activity: AgentActivity | undefined;
  now: number; // 0 for cards without a running task, so the clock redraws only those
  canOperate: boolean;
  canWrite: boolean;
  busy: boolean;
  onStart: () => void;
  onStop: () => void;
  onEdit: () => void;
  onOpen: () => void;
  onLogs: () => void;
}) {
  const labels = Object.entries(agent.labels ?? {});
  return (
    <Card
      data-testid="agent-card"
      data-agent-name={agent.name}
      data-status={agent.status}
      className="flex flex-col [contain-intrinsic-size:auto_11rem] [content-visibility:auto]"
    >
      <CardHeader className="flex-row items-start justify-between gap-2">
        <div className="min-w-0">
          <CardTitle className="truncate">
            <button type="button" className="text-left hover:underline" onClick={onOpen}>
              {agent.name}
            </button>
          </CardTitle>
          <p className="text-xs text-muted-foreground">{agent.type}</p>
        </div>
        <Badge variant={STATUS_VARIANT[agent.status]} data-testid="agent-status" aria-label={`status ${agent.status}`}>
          {agent.status}
        </Badge>
      </CardHeader>
      <CardContent className="flex-1 space-y-2 text-sm">
        {agent.description ? <p className="line-clamp-2 text-muted-foreground">{agent.description}</p> : null}
        {agent.statusReason ? <p className="text-xs text-muted-foreground">last: {agent.statusReason}</p> : null}
        <CardActivity agentName={agent.name} status={agent.status} activity={activity} now={now} onLogs={onLogs} />
        {labels.length ? (
          <div className="flex flex-wrap gap-1">
            {labels.slice(0, 6).map(([k, v]) => (
              <Badge key={k} variant="outline">
                {k}={v}
              </Badge>
            ))}
          </div>
        ) : null}
        <p className="text-xs text-muted-foreground">updated {timeAgo(agent.updatedAt)}</p>
      </CardContent>
      {(canOperate || canWrite) && agent.status !== 'decommissioned' ? (
        <CardFooter className="flex-wrap">
          {canOperate && canStart(agent.status) ? (
            <Button size="sm" onClick={onStart} disabled={busy} aria-label={`Start ${agent.name}`}>
              <Play /> Start
            </Button>
          ) : null}
          {canOperate && canStop(agent.status) ? (
            <Button size="sm" variant="secondary" onClick={onStop} disabled={busy} aria-label={`Stop ${agent.name}`}>
              <Square /> Stop
            </Button>
          ) : null}
          {canWrite ? (
            <Button size="sm" variant="ghost" onClick={onEdit} aria-label={`Edit ${agent.name}`}>
              <Pencil /> Edit
            </Button>
          ) : null}
        </CardFooter>
      ) : null}
    </Card>
  );
}

function AgentDetails({
  agent,
  tab,
  onClose,
  onDecommissioned,
}: {
  agent: Agent;
  tab: string;
  onClose: () => void;
  onDecommissioned: (a: Agent) => void;
}) {
  const { role } = useSession();
  const toast = useToast();
  const states = useAsync<AgentState[]>(() => api.agents.states(agent.id).then((r) => r.data), [agent.id, agent.version]);
  const messages = useAsync<AgentMessage[]>(() => api.agents.messages(agent.id, { limit: 200 }).then((r) => r.data), [agent.id]);
  const [msgType, setMsgType] = React.useState('text');
  const [msgBody, setMsgBody] = React.useState('');
  const [msgError, setMsgError] = React.useState<string | null>(null);
  const [confirming, setConfirming] = React.useState(false);

  useLiveEvents({ topics: ['agent.message'], agentId: agent.id }, (e) => {
    const d = e.data as { messageId: string; fromAgentId: string | null; type: string; payload: Record<string, unknown>; timestamp: string };
    messages.setData((xs) =>
      xs?.some((m) => m.id === d.messageId)
        ? xs
        : [...(xs ?? []), { id: d.messageId, fromAgentId: d.fromAgentId, toAgentId: agent.id, type: d.type, payload: d.payload, createdAt: d.timestamp, deliveredAt: null }],
    );
  });

  const send = async (e: React.FormEvent) => {
    e.preventDefault();
    setMsgError(null);
    let payload: Record<string, unknown>;
    try {
      const t = msgBody.trim();
      payload = t.startsWith('{') ? JSON.parse(t) : { text: t };
    } catch (err) {
      setMsgError(`not valid JSON: ${(err as Error).message}`);
      return;
    }
    try {
      const { data } = await api.agents.sendMessage(agent.id, msgType, payload);
      messages.setData((xs) => (xs?.some((m) => m.id === data.id) ? xs : [...(xs ?? []), data]));
      setMsgBody('');
    } catch (err) {
      const ae = err as ApiError;
      setMsgError(ae.problems.length ? ae.problems.map((p) => `${p.field}: ${p.message}`).join('; ') : ae.message);
    }
  };

  const decommission = async () => {
    try {
      const { data } = await api.agents.decommission(agent.id);
      toast({ title: `${agent.name} decommissioned`, variant: 'success' });
      onDecommissioned(data);
      onClose();
    } catch (err) {
      toast({ title: 'Could not decommission', description: (err as ApiError).message, variant: 'destructive' });
    }
  };

  return (
    <Dialog open onOpenChange={(o) => !o && onClose()}>
      <DialogContent className="max-w-3xl" aria-describedby="agent-details-desc">
        <DialogHeader>
          <DialogTitle className="flex items-center gap-2">
            {agent.name} <Badge variant={STATUS_VARIANT[agent.status]}>{agent.status}</Badge>
          </DialogTitle>
          <DialogDescription id="agent-details-desc">
            {agent.type} agent · id <code className="text-xs">{agent.id}</code> · version {agent.version}
          </DialogDescription>
        </DialogHeader>
        <Tabs defaultValue={tab}>
          <TabsList>
            <TabsTrigger value="messages">Messages</TabsTrigger>
            <TabsTrigger value="logs">Logs</TabsTrigger>
            <TabsTrigger value="metrics">Metrics</TabsTrigger>
            <TabsTrigger value="history">History</TabsTrigger>
            <TabsTrigger value="config">Configuration</TabsTrigger>
          </TabsList>
          <TabsContent value="messages" className="grid gap-3">
            {messages.loading && !messages.data ? (
              <LoadingState rows={2} label="Loading messages" />
            ) : messages.error ? (
              <ErrorState error={messages.error} onRetry={messages.reload} />
            ) : !messages.data?.length ? (
              <EmptyState title="No messages yet">Messages sent to this agent appear here live.</EmptyState>
            ) : (
              <ol className="max-h-72 divide-y divide-border overflow-auto rounded-md border border-border" data-testid="agent-messages">
                {messages.data.map((m) => (
                  <li key={m.id} className="grid gap-1 p-2 text-sm">
                    <div className="flex flex-wrap items-center gap-2 text-xs text-muted-foreground">
                      <Badge variant="outline">{m.type}</Badge>
                      from {m.fromAgentId ?? 'a person or the platform'} · {timeAgo(m.createdAt)}
                      {m.deliveredAt ? ' · delivered' : ' · not yet delivered'}
                    </div>
                    <pre className="overflow-auto whitespace-pre-wrap break-all rounded bg-muted p-2 text-xs">{JSON.stringify(m.payload, null, 2)}</pre>
                  </li>
                ))}
              </ol>
            )}
            {can(role, 'agents.operate') && agent.status !== 'decommissioned' ? (
              <form onSubmit={send} className="grid gap-2 sm:grid-cols-[10rem_1fr_auto] sm:items-end">
                <Field id="msg-type" label="Type">
                  {(p) => <Input {...p} value={msgType} onChange={(e) => setMsgType(e.target.value)} />}
                </Field>
                <Field id="msg-body" label="Text or JSON object" error={msgError ?? undefined}>
                  {(p) => <Textarea {...p} rows={1} value={msgBody} onChange={(e) => setMsgBody(e.target.value)} />}
                </Field>
                <Button type="submit" disabled={!msgBody.trim()}>
                  <Send /> Send
                </Button>
              </form>
            ) : null}
          </TabsContent>
          <TabsContent value="logs">
            <AgentLogs agentId={agent.id} />
          </TabsContent>
          <TabsContent value="metrics">
            <AgentMetrics agentId={agent.id} />
          </TabsContent>
          <TabsContent value="history">
            {states.loading && !states.data ? (
              <LoadingState rows={2} label="Loading history" />
            ) : states.error ? (
              <ErrorState error={states.error} onRetry={states.reload} />
            ) : (
              <Table>
                <TableHeader>
                  <TableRow>
                    <TableHead>When</TableHead>
                    <TableHead>From</TableHead>
                    <TableHead>To</TableHead>
                    <TableHead>Reason</TableHead>
                    <TableHead>Version</TableHead>
                  </TableRow>
                </TableHeader>
                <TableBody>
                  {states.data?.map((s) => (
                    <TableRow key={s.id}>
                      <TableCell className="text-xs">{new Date(s.timestamp).toLocaleString()}</TableCell>
                      <TableCell>{s.from ?? '–'}</TableCell>
                      <TableCell>
                        <Badge variant={STATUS_VARIANT[s.status]}>{s.status}</Badge>
                      </TableCell>
                      <TableCell>{s.reason}</TableCell>
                      <TableCell className="tabular-nums">{s.version}</TableCell>
                    </TableRow>
                  ))}
                </TableBody>
              </Table>
            )}
          </TabsContent>
          <TabsContent value="config">
            {agent.description ? <p className="mb-2 text-sm">{agent.description}</p> : null}
            <pre className="max-h-72 overflow-auto rounded bg-muted p-3 text-xs">{JSON.stringify({ labels: agent.labels, config: agent.config }, null, 2)}</pre>
          </TabsContent>
        </Tabs>
        {can(role, 'agents.write') && agent.status !== 'decommissioned' ? (
          <DialogFooter>
            {confirming ? (
              <>
                <span className="self-center text-sm">Decommission {agent.name}? It cannot be started again.</span>
                <Button variant="outline" onClick={() => setConfirming(false)}>
                  Keep
                </Button>
                <Button variant="destructive" onClick={() => void decommission()}>
                  Decommission
                </Button>
              </>
            ) : (
              <Button variant="ghost" className="text-destructive" onClick={() => setConfirming(true)}>
                <Trash2 /> Decommission…
              </Button>
            )}
          </DialogFooter>
        ) : null}
      </DialogContent>
    </Dialog>
  );
}

function readQuery() {
  const q = new URLSearchParams(window.location.search);
  return { status: q.get('status') ?? '', type: q.get('type') ?? '', search: q.get('q') ?? '', agent: q.get('agent') ?? '' };
}

function AgentGrid() {
  const { role } = useSession();
  const toast = useToast();
  const initial = React.useMemo(readQuery, []);
  const [status, setStatus] = React.useState(initial.status);
  const [type, setType] = React.useState(initial.type);
  const [search, setSearch] = React.useState(initial.search);
  const [editing, setEditing] = React.useState<Agent | null>(null);
  const [creating, setCreating] = React.useState(false);
  const [openId, setOpenId] = React.useState<string>(initial.agent);
  const [openTab, setOpenTab] = React.useState('messages');
  const [busy, setBusy] = React.useState<Set<string>>(new Set());
  const showDecommissioned = status === 'decommissioned';
  const list = useAsync<Agent[]>(() => api.agents.listAll(showDecommissioned ? { status: 'decommissioned' } : {}), [showDecommissioned]);
  useResync(list.reload);

  // Keep the URL in step with the filters so a view can be shared or reloaded.
  React.useEffect(() => {
    const q = new URLSearchParams();
    if (status) q.set('status', status);
    if (type) q.set('type', type);
    if (search) q.set('q', search);
    if (openId) q.set('agent', openId);
    const s = q.toString();
    window.history.replaceState(null, '', s ? `?${s}` : window.location.pathname);
  }, [status, type, search, openId]);

  const upsert = React.useCallback(
    (a: Agent) =>
      list.setData((xs) => {
        const arr = xs ?? [];
        const i = arr.findIndex((x) => x.id === a.id);
        if (i < 0) return [...arr, a];
        if (arr[i].version > a.version) return arr; // an older answer must not undo a newer event
        const copy = arr.slice();
        copy[i] = a;
        return copy;
      }),
    [list],
  );

  useLiveEvents({ topics: ['agent.status.update', 'agent.updated', 'agent.purged'] }, (e) => {
    const d = e.data as { agentId: string; status?: AgentStatus; reason?: string; version?: number; timestamp?: string };
    if (e.topic === 'agent.purged') {
      list.setData((xs) => xs?.filter((a) => a.id !== d.agentId));
      return;
    }
    const known = list.data?.find((a) => a.id === d.agentId);
    if (e.topic === 'agent.status.update' && known) {
      list.setData((xs) =>
        xs?.map((a) =>
          a.id === d.agentId && (d.version ?? 0) >= a.version
            ? { ...a, status: d.status ?? a.status, statusReason: d.reason ?? a.statusReason, version: d.version ?? a.version, updatedAt: d.timestamp ?? a.updatedAt }
            : a,
        ),
      );
      return;
    }
    // A new agent, or new settings: read it whole.
    api.agents.get(d.agentId).then(({ data }) => upsert(data), () => {});
  });

  const act = async (a: Agent, action: 'start' | 'stop') => {
    setBusy((s) => new Set(s).add(a.id));
    try {
      const { data } = await (action === 'start' ? api.agents.start(a.id) : api.agents.stop(a.id));
      upsert(data);
    } catch (err) {
      const ae = err as ApiError;
      toast({ title: `Could not ${action} ${a.name}`, description: `${ae.message} (${ae.code})`, variant: 'destructive' });
    } finally {
      setBusy((s) => {
        const n = new Set(s);
        n.delete(a.id);
        return n;
      });
    }
  };

  // The grid follows the filters a moment later (interruptibly), the inputs at once.
  const deferred = {
    search: React.useDeferredValue(search),
    status: React.useDeferredValue(status),
    type: React.useDeferredValue(type),
    data: React.useDeferredValue(list.data),
  };
  const needle = deferred.search.trim().toLowerCase();
  const shown = React.useMemo(
    () =>
      (deferred.data ?? [])
    .filter((a) => (showDecommissioned ? a.status === 'decommissioned' : a.status !== 'decommissioned'))
        .filter((a) => !deferred.status || showDecommissioned || a.status === deferred.status)
        .filter((a) => !deferred.type || a.type === deferred.type)
        .filter(
          (a) =>
            !needle ||
            a.name.toLowerCase().includes(needle) ||
            a.description.toLowerCase().includes(needle) ||
            Object.entries(a.labels ?? {}).some(([k, v]) => `${k}=${v}`.toLowerCase().includes(needle)),
        )
        .sort((x, y) => x.name.localeCompare(y.name)),
    [deferred.data, deferred.status, deferred.type, needle, showDecommissioned],
  );
  const opened = list.data?.find((a) => a.id === openId);

  // The cards' current task and resource use: loaded for the agents that may have a task in
  // flight (100 per request), then moved on by task and resource events.
  const [activity, setActivity] = React.useState<Record<string, AgentActivity>>({});
  // Events can come several per frame: each update starts from the newest map, kept here.
  const activityRef = React.useRef(activity);
  const updateActivity = React.useCallback((fn: (prev: Record<string, AgentActivity>) => Record<string, AgentActivity>) => {
    const next = fn(activityRef.current);
    if (next === activityRef.current) return;
    activityRef.current = next;
    setActivity(next);
  }, []);
  const activeKey = React.useMemo(
    () =>
      (list.data ?? [])
        .filter((a) => ACTIVE_STATUSES.has(a.status))
        .map((a) => a.id)
        .sort()
        .join(','),
    [list.data],
  );
  const loadActivity = React.useCallback(
    (ids: string[]) => {
      for (let i = 0; i < ids.length; i += 100) {
        api.agents.activity(ids.slice(i, i + 100)).then(
          ({ data }) =>
            updateActivity((prev) => {
              const next = { ...prev };
              for (const a of data) next[a.agentId] = a;
              return next;
            }),
          () => {}, // the cards keep "loading…"; the next change or resync asks again
        );
      }
    },
    [updateActivity],
  );
  const [activityTick, setActivityTick] = React.useState(0);
  React.useEffect(() => {
    if (activeKey) loadActivity(activeKey.split(','));
  }, [activeKey, activityTick, loadActivity]);
  useResync(() => setActivityTick((t) => t + 1));
  useLiveEvents({ topics: ['agent.task.update', 'agent.resources'] }, (e) => {
    if (e.topic === 'agent.resources') {
      const d = e.data as unknown as ResourcesEventData;
      updateActivity((prev) => ({ ...prev, [d.agentId]: applyResources(prev[d.agentId], d) }));
      return;
    }
    const d = e.data as unknown as TaskEventData;
    const r = applyTaskEvent(activityRef.current[d.agentId], d);
    if (r.next && r.next !== activityRef.current[d.agentId]) {
      const next = r.next;
      updateActivity((prev) => ({ ...prev, [d.agentId]: next }));
    }
    if (r.refetch) loadActivity([d.agentId]);
  });
  // One clock for the running times, ticking only while some card shows a running task.
  const anyRunning = Object.values(activity).some((a) => a.currentTask);
  const [now, setNow] = React.useState(() => Date.now());
  React.useEffect(() => {
    if (!anyRunning) return;
    setNow(Date.now());
    const t = window.setInterval(() => setNow(Date.now()), 1000);
    return () => window.clearInterval(t);
  }, [anyRunning]);

  return (
    <div className="grid gap-4">
      <div className="flex flex-wrap items-end gap-3" role="search">
        <div className="grid min-w-56 flex-1 gap-1.5">
          <Label htmlFor="agent-search">Search</Label>
          <div className="relative">
            <Search className="pointer-events-none absolute left-2.5 top-2.5 size-4 text-muted-foreground" aria-hidden="true" />
            <Input id="agent-search" className="pl-8" placeholder="name, description or label" value={search} onChange={(e) => setSearch(e.target.value)} />
          </div>
        </div>
        <div className="grid gap-1.5">
          <Label htmlFor="agent-status-filter">Status</Label>
          <NativeSelect id="agent-status-filter" className="w-44" value={status} onChange={(e) => setStatus(e.target.value)}>
            <option value="">any (live)</option>
            {(['created', 'starting', 'running', 'stopping', 'stopped', 'error', 'decommissioned'] as const).map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </NativeSelect>
        </div>
        <div className="grid gap-1.5">
          <Label htmlFor="agent-type-filter">Type</Label>
          <NativeSelect id="agent-type-filter" className="w-36" value={type} onChange={(e) => setType(e.target.value)}>
            <option value="">any</option>
            <option value="command">command</option>
            <option value="llm">llm</option>
            <option value="remote">remote</option>
          </NativeSelect>
        </div>
        {can(role, 'agents.write') ? (
          <Button onClick={() => setCreating(true)} data-testid="new-agent">
            <Plus /> New agent
          </Button>
        ) : null}
      </div>

      {list.loading && !list.data ? (
        <LoadingState label="Loading agents" />
      ) : list.error ? (
        <ErrorState error={list.error} onRetry={list.reload} title="Could not load the agents" />
      ) : shown.length === 0 ? (
        <EmptyState title={list.data?.length ? 'No agent matches these filters' : 'No agents yet'}>
          {list.data?.length ? 'Clear the search or pick another status.' : can(role, 'agents.write') ? 'Create the first one with “New agent”.' : 'An operator can create them.'}
        </EmptyState>
      ) : (
        <>
          <p className="text-sm text-muted-foreground" aria-live="polite">
            {shown.length} agent{shown.length === 1 ? '' : 's'}
          </p>
          <div className="grid gap-3 sm:grid-cols-2 lg:grid-cols-3 xl:grid-cols-4" data-testid="agent-grid">
            {shown.map((a) => (
              <AgentCard
                key={a.id}
                agent={a}
                activity={activity[a.id]}
                now={activity[a.id]?.currentTask ? now : 0}
                canOperate={can(role, 'agents.operate')}
                canWrite={can(role, 'agents.write')}
                busy={busy.has(a.id)}
                onStart={() => void act(a, 'start')}
                onStop={() => void act(a, 'stop')}
                onEdit={() => setEditing(a)}
                onOpen={() => {
                  setOpenTab('messages');
                  setOpenId(a.id);
                }}
                onLogs={() => {
                  setOpenTab('logs');
                  setOpenId(a.id);
                }}
              />
            ))}
          </div>
        </>
      )}

      <AgentConfigDialog
        open={creating || editing !== null}
        onOpenChange={(o) => {
          if (!o) {
            setCreating(false);
            setEditing(null);
          }
        }}
        agent={editing ?? undefined}
        onSaved={(a) => {
          upsert(a);
          toast({ title: editing ? `${a.name} saved` : `${a.name} created`, variant: 'success' });
        }}
      />
      {opened ? <AgentDetails agent={opened} tab={openTab} onClose={() => setOpenId('')} onDecommissioned={upsert} /> : null}
    </div>
  );
}

export default function AgentsPage() {
  return (
    <AppShell page="agents" title="Agents">
      <AgentGrid />
    </AppShell>
  );
}
