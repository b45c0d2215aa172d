// An agent's live logs (agent.log events, and the output of its recent tasks) and its
// AgentMetrics charts (task durations, success rate, tokens), for the agent details dialog.
import * as React from 'react';
import { Bar, BarChart, CartesianGrid, Legend, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import type { Task } from '../../lib/api';
import { summarize } from '../../lib/agentMetrics';
import { api } from '../../lib/client';
import { useAsync, useLiveEvents, useResync } from '../../lib/hooks';
import { cn, timeAgo } from '../../lib/utils';
import { Badge } from '../ui/badge';
import { EmptyState, ErrorState, LoadingState } from './states';

const TASK_VARIANT: Record<Task['status'], 'success' | 'destructive' | 'default' | 'secondary' | 'outline'> = {
  queued: 'secondary',
  running: 'default',
  succeeded: 'success',
  failed: 'destructive',
  cancelled: 'outline',
};

interface LogLine {
  key: number;
  taskId: string;
  stream: string;
  text: string;
}

const MAX_LINES = 2000;

/** Live output of the agent's tasks, plus the recorded output of a finished task on demand. */
export function AgentLogs({ agentId }: { agentId: string }) {
  const tasks = useAsync(() => api.agents.tasks(agentId, { limit: 20 }).then((r) => r.data), [agentId]);
  const [lines, setLines] = React.useState<LogLine[]>([]);
  const [shown, setShown] = React.useState<string | null>(null);
  const seq = React.useRef(0);
  const box = React.useRef<HTMLPreElement>(null);

  useLiveEvents({ topics: ['agent.log', 'agent.task.update'], agentId }, (e) => {
    if (e.topic === 'agent.log') {
      const d = e.data as { taskId: string; stream: string; text: string };
      const parts = d.text.replace(/\n$/, '').split('\n');
      setLines((xs) => [...xs, ...parts.map((text) => ({ key: seq.current++, taskId: d.taskId, stream: d.stream, text }))].slice(-MAX_LINES));
    } else {
      const d = e.data as { taskId: string; status: Task['status'] };
      tasks.setData((xs) => {
        if (!xs?.some((t) => t.id === d.taskId)) {
          tasks.reload();
          return xs;
        }
        return xs.map((t) => (t.id === d.taskId ? { ...t, status: d.status } : t));
      });
      if (d.status !== 'queued' && d.status !== 'running') tasks.reload();
    }
  });
  useResync(tasks.reload);

  React.useEffect(() => {
    const el = box.current;
    if (el && el.scrollHeight - el.scrollTop - el.clientHeight < 80) el.scrollTop = el.scrollHeight;
  }, [lines]);

  const recorded = tasks.data?.find((t) => t.id === shown);
  return (
    <div className="grid gap-3">
      <div>
        <p className="mb-1 text-sm font-medium">Live output</p>
        <pre
          ref={box}
          role="log"
          aria-live="polite"
          aria-label="Live output of this agent's tasks"
          tabIndex={0}
          data-testid="agent-log"
          data-lines={lines.length}
          className="h-48 overflow-auto rounded-md bg-slate-950 p-2 text-xs leading-5 text-slate-100"
        >
          {lines.length === 0 ? <span className="text-slate-400">Waiting for output: lines appear here while a task runs.</span> : null}
          {lines.map((l) => (
            <div key={l.key} className={cn(l.stream === 'stderr' && 'text-red-300', l.stream === 'llm' && 'text-sky-300')}>
              <span className="select-none text-slate-500">{l.taskId.slice(-6)} </span>
              {l.text}
            </div>
          ))}
        </pre>
      </div>
      <div>
        <p className="mb-1 text-sm font-medium">Recent tasks</p>
        {tasks.loading && !tasks.data ? (
          <LoadingState rows={2} label="Loading tasks" />
        ) : tasks.error ? (
          <ErrorState error={tasks.error} onRetry={tasks.reload} />
        ) : !tasks.data?.length ? (
          <EmptyState title="No tasks yet" />
        ) : (
          <ul className="grid max-h-40 gap-1 overflow-auto text-xs" data-testid="agent-tasks">
            {tasks.data.map((t) => (
              <li key={t.id} className="flex flex-wrap items-center gap-2">
                <Badge variant={TASK_VARIANT[t.status]}>{t.status}</Badge>
                <button type="button" className="font-mono underline-offset-2 hover:underline" onClick={() => setShown(shown === t.id ? null : t.id)} aria-expanded={shown === t.id}>
                  {t.id}
                </button>
                <span className="text-muted-foreground">{timeAgo(t.createdAt)}</span>
                {t.result?.wallMs !== undefined ? <span className="tabular-nums text-muted-foreground">{t.result.wallMs} ms</span> : null}
                {t.error ? <span className="text-destructive">{t.error}</span> : null}
              </li>
            ))}
          </ul>
        )}
        {recorded ? (
          <pre className="mt-2 max-h-40 overflow-auto whitespace-pre-wrap rounded bg-muted p-2 text-xs" data-testid="task-output">
            {recorded.result ? `${recorded.result.stdout ?? ''}${recorded.result.stderr ? `\n[stderr]\n${recorded.result.stderr}` : ''}` || '(no output)' : 'No result yet.'}
          </pre>
        ) : null}
      </div>
    </div>
  );
}

function ChartBox({ title, testId, points, children }: { title: string; testId: string; points: number; children: React.ReactElement }) {
  return (
    <figure className="grid gap-1" data-testid={testId} data-points={points}>
      <figcaption className="text-sm font-medium">{title}</figcaption>
      <div className="h-40">
        {points ? (
          <ResponsiveContainer width="100%" height="100%">
            {children}
          </ResponsiveContainer>
        ) : (
          <p className="text-xs text-muted-foreground">No data yet.</p>
        )}
      </div>
    </figure>
  );
}

export function AgentMetrics({ agentId }: { agentId: string }) {
  const data = useAsync(
    () =>
      Promise.all([api.agents.tasks(agentId, { limit: 200 }), api.agents.metrics(agentId, { limit: 10000 })]).then(([t, m]) => summarize(t.data, m.data)),
    [agentId],
  );
  useLiveEvents({ topics: ['agent.task.update'], agentId }, (e) => {
    const s = (e.data as { status?: string }).status;
    if (s === 'succeeded' || s === 'failed' || s === 'cancelled') data.reload();
  });
  if (data.loading && !data.data) return <LoadingState rows={2} label="Loading metrics" />;
  if (data.error) return <ErrorState error={data.error} onRetry={data.reload} />;
  const m = data.data!;
  const rate = m.finished ? Math.round((m.succeeded / m.finished) * 100) : null;
  return (
    <div className="grid gap-4">
      <dl className="grid grid-cols-3 gap-2 text-center" data-testid="agent-success-rate" data-rate={rate ?? ''}>
        <div className="rounded-md border border-border p-2">
          <dt className="text-xs text-muted-foreground">Success rate</dt>
          <dd className="text-lg font-semibold tabular-nums">{rate === null ? '–' : `${rate} %`}</dd>
        </div>
        <div className="rounded-md border border-border p-2">
          <dt className="text-xs text-muted-foreground">Succeeded</dt>
          <dd className="text-lg font-semibold tabular-nums">{m.succeeded}</dd>
        </div>
        <div className="rounded-md border border-border p-2">
          <dt className="text-xs text-muted-foreground">Failed</dt>
          <dd className="text-lg font-semibold tabular-nums">{m.failed}</dd>
        </div>
      </dl>
      <ChartBox title="Task durations (ms), oldest first" testId="chart-durations" points={m.durations.length}>
        <BarChart data={m.durations} margin={{ top: 4, right: 8, bottom: 0, left: -8 }}>
          <CartesianGrid strokeDasharray="3 3" vertical={false} />
          <XAxis dataKey="task" tick={{ fontSize: 10 }} />
          <YAxis tick={{ fontSize: 10 }} />
          <Tooltip />
          <Bar dataKey="ms" name="duration (ms)" fill="#2563eb" maxBarSize={40} isAnimationActive={false} />
        </BarChart>
      </ChartBox>
      <ChartBox title="Tokens per task (llm agents)" testId="chart-tokens" points={m.tokens.length}>
        <BarChart data={m.tokens} margin={{ top: 4, right: 8, bottom: 0, left: -8 }}>
          <CartesianGrid strokeDasharray="3 3" vertical={false} />
          <XAxis dataKey="task" tick={{ fontSize: 10 }} />
          <YAxis tick={{ fontSize: 10 }} />
          <Tooltip />
          <Legend />
          <Bar dataKey="input" stackId="t" name="input" fill="#0891b2" maxBarSize={40} isAnimationActive={false} />
          <Bar dataKey="output" stackId="t" name="output" fill="#7c3aed" maxBarSize={40} isAnimationActive={false} />
        </BarChart>
      </ChartBox>
    </div>
  );
}
