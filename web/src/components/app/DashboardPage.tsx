import * as React from 'react';
import {
  AGENT_STATUSES,
  type AgentCounts as AgentCountsData,
  type AgentStatus,
  type Execution,
  type ExecutionStatus,
  type SystemHealth,
} from '../../lib/api';
import { api } from '../../lib/client';
import { useAsync, useLiveEvents, useResync } from '../../lib/hooks';
import { formatBytes } from '../../lib/utils';
import type { LiveEvent } from '../../lib/websocket';
import { Badge } from '../ui/badge';
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from '../ui/card';
import { NativeSelect } from '../ui/input';
import { Label } from '../ui/label';
import { AppShell } from './AppShell';
import { STATUS_COLOR, STATUS_VARIANT } from './agentStatus';
import { EmptyState, ErrorState, LoadingState } from './states';

/** One `system.health.status` event, flattened for the charts. */
export interface HealthPoint {
  t: number;
  time: string;
  nodeId: string;
  status: string;
  cpu: number;
  memMiB: number;
  http: number;
  ws: number;
  queue: number;
  storeMs: number | null;
  busMs: number | null;
}

const MAX_POINTS = 120;

// The charts (recharts and d3, most of the page's script) are loaded apart and after the
// first render: counts and status are drawn without waiting for them to be evaluated.
const loadChart = () => import('./HealthChart');
const HealthLineChart = React.lazy(loadChart);

function toPoint(e: LiveEvent): HealthPoint {
  const d = e.data as Record<string, any>;
  const t = Date.parse(String(d.timestamp ?? e.timestamp)) || Date.now();
  return {
    t,
    time: new Date(t).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' }),
    nodeId: String(d.nodeId ?? ''),
    status: String(d.status ?? ''),
    cpu: Number(d.cpuPercent ?? 0),
    memMiB: Number(d.memoryRssBytes ?? 0) / (1024 * 1024),
    http: Number(d.httpConnections ?? 0),
    ws: Number(d.websocketConnections ?? 0),
    queue: Number(d.queueDepth ?? 0),
    storeMs: d.store?.latencyMs ?? null,
    busMs: d.bus?.latencyMs ?? null,
  };
}

function MetricChart({
  title,
  description,
  data,
  lines,
  unit,
  testId,
}: {
  title: string;
  description: string;
  data: HealthPoint[];
  lines: { key: keyof HealthPoint; name: string; color: string }[];
  unit?: string;
  testId: string;
}) {
  const last = data[data.length - 1];
  return (
    <Card data-testid={testId} data-points={data.length}>
      <CardHeader>
        <CardTitle>{title}</CardTitle>
        <CardDescription>
          {description}
          {last ? (
            <span className="ml-1 font-medium text-foreground">
              · now{' '}
              {lines
                .map((l) => {
                  const v = last[l.key];
                  return typeof v === 'number' ? `${v.toFixed(v < 10 && unit !== '' ? 2 : 0)}${unit ?? ''}` : '–';
                })
                .join(' / ')}
            </span>
          ) : null}
        </CardDescription>
      </CardHeader>
      <CardContent className="h-44">
        {data.length === 0 ? (
          <div className="flex h-full items-center justify-center text-sm text-muted-foreground">Waiting for the first health report…</div>
        ) : (
          <React.Suspense fallback={<div className="flex h-full items-center justify-center text-sm text-muted-foreground">Loading the chart…</div>}>
            <HealthLineChart data={data} lines={lines} unit={unit} />
          </React.Suspense>
        )}
      </CardContent>
    </Card>
  );
}

function HealthCharts() {
  const [points, setPoints] = React.useState<HealthPoint[]>([]);
  const [node, setNode] = React.useState<string>('');
  const health = useAsync<SystemHealth>(() => api.system.health().then((r) => r.data));
  React.useEffect(() => {
    void loadChart();
  }, []);

  // Redrawing five charts is the page's heaviest work: it waits behind the counts, the status
  // and the user's input (a transition), so a report arriving while the page opens does not
  // hold them back.
  useLiveEvents({ topics: ['system.health.status'] }, (e) => {
    const p = toPoint(e);
    React.startTransition(() => {
      setPoints((xs) => [...xs, p].slice(-MAX_POINTS * 8));
      setNode((n) => n || p.nodeId);
    });
  });

  const nodes = React.useMemo(() => [...new Set(points.map((p) => p.nodeId))], [points]);
  const series = React.useMemo(() => points.filter((p) => p.nodeId === node).slice(-MAX_POINTS), [points, node]);
  const last = series[series.length - 1];
  const status = last?.status ?? health.data?.status;

  return (
    <section aria-labelledby="health-title" className="grid gap-3">
      <div className="flex flex-wrap items-center gap-3">
        <h2 id="health-title" className="text-lg font-semibold">
          System health
        </h2>
        {status ? (
          <Badge variant={status === 'ok' ? 'success' : status === 'degraded' ? 'warning' : 'destructive'} data-testid="health-status">
            {status}
          </Badge>
        ) : null}
        {health.data ? (
          <span className="text-xs text-muted-foreground">
            version {health.data.version} · store {health.data.checks.store.backend} · bus {health.data.checks.bus.backend}
          </span>
        ) : null}
        {nodes.length > 1 ? (
          <div className="ml-auto flex items-center gap-2">
            <Label htmlFor="node">Node</Label>
            <NativeSelect id="node" className="w-56" value={node} onChange={(e) => setNode(e.target.value)}>
              {nodes.map((n) => (
                <option key={n} value={n}>
                  {n}
                </option>
              ))}
            </NativeSelect>
          </div>
        ) : null}
      </div>
      {health.error ? <ErrorState error={health.error} onRetry={health.reload} /> : null}
      <div className="grid gap-3 sm:grid-cols-2 xl:grid-cols-3">
        <MetricChart testId="chart-cpu" title="CPU" description="% of one core" unit="%" data={series} lines={[{ key: 'cpu', name: 'CPU', color: '#2563eb' }]} />
        <MetricChart
          testId="chart-memory"
          title="Memory"
          description={last ? `resident ${formatBytes(last.memMiB * 1024 * 1024)}` : 'resident set, MiB'}
          unit=" MiB"
          data={series}
          lines={[{ key: 'memMiB', name: 'RSS', color: '#7c3aed' }]}
        />
        <MetricChart
          testId="chart-connections"
          title="Connections"
          description="HTTP / WebSocket"
          unit=""
          data={series}
          lines={[
            { key: 'http', name: 'HTTP', color: '#0891b2' },
            { key: 'ws', name: 'WebSocket', color: '#16a34a' },
          ]}
        />
        <MetricChart testId="chart-queue" title="Queue depth" description="events committed, not yet published" unit="" data={series} lines={[{ key: 'queue', name: 'queue', color: '#d97706' }]} />
        <MetricChart
          testId="chart-latency"
          title="Store and bus latency"
          description="ms per health probe"
          unit=" ms"
          data={series}
          lines={[
            { key: 'storeMs', name: 'store', color: '#dc2626' },
            { key: 'busMs', name: 'bus', color: '#475569' },
          ]}
        />
      </div>
    </section>
  );
}

/** Waiting time before the counts are read again after agent events: a burst of transitions
 * (500 agents started at once) costs one request, not one per event. */
const COUNTS_REFRESH_MS = 250;

/** Calls `reload` COUNTS_REFRESH_MS after the first of a burst of `topics` events, and after a
 * resync. */
function useReloadAfter(topics: string[], reload: () => void) {
  const timer = React.useRef<ReturnType<typeof setTimeout> | null>(null);
  React.useEffect(
    () => () => {
      if (timer.current) clearTimeout(timer.current);
    },
    [],
  );
  useResync(reload);
  useLiveEvents({ topics }, () => {
    if (timer.current) return;
    timer.current = setTimeout(() => {
      timer.current = null;
      reload();
    }, COUNTS_REFRESH_MS);
  });
}

function AgentCounts() {
  // One request whatever the number of agents (GET /api/v1/agents/counts), read again after
  // agent events instead of keeping every agent's status here.
  const agents = useAsync<AgentCountsData>(() => api.agents.counts().then((r) => r.data));
  useReloadAfter(['agent.status.update', 'agent.purged'], agents.reload);
  const counts = agents.data?.byStatus;
  const total = agents.data?.total ?? 0;

  return (
    <section aria-labelledby="agents-title" className="grid gap-3">
      <div className="flex items-center gap-3">
        <h2 id="agents-title" className="text-lg font-semibold">
          Agents by status
        </h2>
        <a href="/agents" className="text-sm text-primary hover:underline">
          all agents →
        </a>
      </div>
      {agents.loading && !agents.data ? (
        <LoadingState rows={1} label="Loading agents" />
      ) : agents.error ? (
        <ErrorState error={agents.error} onRetry={agents.reload} />
      ) : total === 0 ? (
        <EmptyState title="No agents yet">
          <a className="text-primary underline" href="/agents">
            Create one
          </a>
        </EmptyState>
      ) : (
        <div className="grid grid-cols-2 gap-3 sm:grid-cols-3 lg:grid-cols-6">
          {AGENT_STATUSES.filter((s) => s !== 'decommissioned').map((s) => (
            <a key={s} href={`/agents?status=${s}`} className="rounded-lg border border-border p-3 hover:bg-muted" data-testid={`count-${s}`}>
              <div className="flex items-center gap-2 text-sm text-muted-foreground">
                <span className="size-2 rounded-full" style={{ background: STATUS_COLOR[s] }} aria-hidden="true" />
                {s}
              </div>
              <div className="text-2xl font-semibold tabular-nums" data-count={counts?.[s] ?? 0}>
                {counts?.[s] ?? 0}
              </div>
            </a>
          ))}
        </div>
      )}
    </section>
  );
}

const EXECUTION_STATES: ExecutionStatus[] = ['pending', 'running', 'succeeded', 'failed', 'cancelled'];

interface ExecutionOverviewData {
  counts: Record<ExecutionStatus, number>;
  failures: Execution[];
}

/** Executions by state (one `limit=1` read per state: its `meta.total`) and the latest failed
 * ones, read again after workflow events (debounced like the agent counts). */
async function loadExecutions(): Promise<ExecutionOverviewData> {
  const [totals, failed] = await Promise.all([
    Promise.all(EXECUTION_STATES.map((status) => api.executions.list({ status, limit: 1 }).then((r) => r.meta.total ?? r.data.length))),
    api.executions.list({ status: 'failed', limit: 5 }),
  ]);
  const counts = {} as Record<ExecutionStatus, number>;
  EXECUTION_STATES.forEach((s, i) => (counts[s] = totals[i]));
  return { counts, failures: failed.data };
}

function ExecutionOverview() {
  const executions = useAsync<ExecutionOverviewData>(loadExecutions);
  useReloadAfter(['workflow.progress.update'], executions.reload);
  const data = executions.data;
  return (
    <section aria-labelledby="executions-title" className="grid gap-3">
      <div className="flex items-center gap-3">
        <h2 id="executions-title" className="text-lg font-semibold">
          Executions by state
        </h2>
        <a href="/workflows" className="text-sm text-primary hover:underline">
          all workflows →
        </a>
      </div>
      {executions.loading && !data ? (
        <LoadingState rows={1} label="Loading executions" />
      ) : executions.error ? (
        <ErrorState error={executions.error} onRetry={executions.reload} />
      ) : data ? (
        <>
          <div className="grid grid-cols-2 gap-3 sm:grid-cols-3 lg:grid-cols-5">
            {EXECUTION_STATES.map((s) => (
              <div key={s} className="rounded-lg border border-border p-3" data-testid={`executions-${s}`}>
                <div className="text-sm text-muted-foreground">{s}</div>
                <div className="text-2xl font-semibold tabular-nums" data-count={data.counts[s]}>
                  {data.counts[s]}
                </div>
              </div>
            ))}
          </div>
          <h3 className="text-sm font-semibold">Recent failures</h3>
          {data.failures.length === 0 ? (
            <div className="text-sm text-muted-foreground" data-state="empty">
              No failed executions.
            </div>
          ) : (
            <ul className="divide-y divide-border rounded-lg border border-border text-sm" data-testid="recent-failures">
              {data.failures.map((e) => (
                <li key={e.id} className="flex flex-wrap items-baseline gap-x-3 px-4 py-2">
                  <a
                    className="font-mono text-xs text-primary hover:underline"
                    href={`/workflows?id=${encodeURIComponent(e.workflowId)}&execution=${encodeURIComponent(e.id)}`}
                  >
                    {e.id.slice(0, 8)}
                  </a>
                  <span className="truncate text-muted-foreground">{e.error ?? 'failed'}</span>
                  <span className="ml-auto text-xs text-muted-foreground">
                    {new Date(e.completedAt ?? e.createdAt).toLocaleString()}
                  </span>
                </li>
              ))}
            </ul>
          )}
        </>
      ) : null}
    </section>
  );
}

function EventFeed() {
  const [events, setEvents] = React.useState<LiveEvent[]>([]);
  const [showHealth, setShowHealth] = React.useState(false);
  useLiveEvents({ topics: ['*'] }, (e) => React.startTransition(() => setEvents((xs) => [e, ...xs].slice(0, 200))));
  const shown = events.filter((e) => showHealth || e.topic !== 'system.health.status').slice(0, 50);
  return (
    <section aria-labelledby="feed-title" className="grid gap-3">
      <div className="flex items-center gap-3">
        <h2 id="feed-title" className="text-lg font-semibold">
          Live events
        </h2>
        <label className="ml-auto flex items-center gap-2 text-sm text-muted-foreground">
          <input type="checkbox" checked={showHealth} onChange={(e) => setShowHealth(e.target.checked)} /> show health reports
        </label>
      </div>
      <Card>
        {shown.length === 0 ? (
          <div className="p-6 text-center text-sm text-muted-foreground" data-state="empty">
            No events yet. Changes to agents appear here as they happen.
          </div>
        ) : (
          <ol className="max-h-96 divide-y divide-border overflow-auto" aria-live="polite" data-testid="event-feed">
            {shown.map((e) => (
              <li key={e.id} className="flex flex-wrap items-baseline gap-x-3 gap-y-1 px-4 py-2 text-sm">
                <span className="w-12 text-xs tabular-nums text-muted-foreground">#{e.id}</span>
                <code className="text-xs font-semibold">{e.topic}</code>
                <EventSummary e={e} />
                <span className="ml-auto text-xs text-muted-foreground">{new Date(e.timestamp).toLocaleTimeString()}</span>
              </li>
            ))}
          </ol>
        )}
      </Card>
    </section>
  );
}

function EventSummary({ e }: { e: LiveEvent }) {
  const d = e.data as Record<string, any>;
  if (e.topic === 'agent.status.update') {
    return (
      <span>
        {d.name ?? d.agentId} {d.from ? `${d.from} → ` : ''}
        <Badge variant={STATUS_VARIANT[d.status as AgentStatus] ?? 'outline'}>{d.status}</Badge>
        {d.reason ? <span className="ml-1 text-muted-foreground">({d.reason})</span> : null}
      </span>
    );
  }
  if (e.topic === 'agent.message') return <span>to {d.agentId}: {String(d.type)}</span>;
  if (e.topic === 'system.health.status') return <span className="text-muted-foreground">{d.status} · cpu {Number(d.cpuPercent).toFixed(1)}%</span>;
  return <span className="truncate text-muted-foreground">{d.name ?? d.agentId ?? ''}</span>;
}

export default function DashboardPage() {
  return (
    <AppShell page="dashboard" title="Dashboard">
      <div className="grid gap-8">
        <AgentCounts />
        <ExecutionOverview />
        <HealthCharts />
        <EventFeed />
      </div>
    </AppShell>
  );
}
