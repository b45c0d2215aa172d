import { Activity, ScrollText } from 'lucide-react';
import type { AgentActivity, AgentStatus } from '../../lib/api';
import { describeResources, formatDuration } from '../../lib/agentActivity';
import { Button } from '../ui/button';

/** Statuses in which an agent may have a task in flight and a measured use. */
export const ACTIVE_STATUSES: ReadonlySet<AgentStatus> = new Set(['starting', 'running', 'stopping']);

/**
 * The live part of an agent card: its current task (short text, how long it has run, a button
 * to its logs) or "idle", and its resource use (CPU %, memory against its limit) or "n/a".
 * `activity` undefined: not loaded yet. `now` drives the running time.
 */
export function CardActivity({
  agentName,
  status,
  activity,
  now,
  onLogs,
}: {
  agentName: string;
  status: AgentStatus;
  activity: AgentActivity | undefined;
  now: number;
  onLogs: () => void;
}) {
  if (!ACTIVE_STATUSES.has(status) && !activity?.currentTask) return null;
  const task = activity?.currentTask ?? null;
  const res = describeResources(activity?.resources);
  const started = task?.startedAt ? Date.parse(task.startedAt) : NaN;
  return (
    <div className="grid gap-1.5 rounded-md border border-border bg-muted/40 p-2 text-xs" data-testid="agent-activity">
      {task ? (
        <div className="flex items-center gap-2" data-testid="agent-current-task" data-task-id={task.id}>
          <span className="relative flex size-2 shrink-0" aria-hidden="true">
            <span className="absolute inline-flex size-full animate-ping rounded-full bg-emerald-400 opacity-60" />
            <span className="relative inline-flex size-2 rounded-full bg-emerald-500" />
          </span>
          <span className="min-w-0 flex-1 truncate" title={task.summary}>
            {task.summary}
          </span>
          {Number.isFinite(started) ? (
            <span className="shrink-0 tabular-nums text-muted-foreground" data-testid="agent-task-elapsed">
              {formatDuration(now - started)}
            </span>
          ) : null}
          <Button size="sm" variant="ghost" className="h-6 px-1.5 text-xs" onClick={onLogs} aria-label={`Logs of ${agentName}'s current task`}>
            <ScrollText /> Logs
          </Button>
        </div>
      ) : (
        <div className="text-muted-foreground" data-testid="agent-idle">
          {activity ? 'idle' : 'loading…'}
        </div>
      )}
      <div className="grid gap-1" data-testid="agent-resources" title={res.title}>
        <div className="flex min-w-0 items-center gap-2">
          <Activity className="size-3.5 shrink-0 text-muted-foreground" aria-hidden="true" />
          <span className="shrink-0 tabular-nums">{res.text}</span>
          {res.text === 'n/a' && res.title ? <span className="min-w-0 truncate text-muted-foreground">({res.title})</span> : null}
        </div>
        {res.memoryShare !== undefined ? (
          <span
            className="block h-1 w-full overflow-hidden rounded-full bg-border"
            role="meter"
            aria-label="memory against its limit"
            aria-valuemin={0}
            aria-valuemax={100}
            aria-valuenow={Math.round(res.memoryShare * 100)}
          >
            <span className={`block h-full ${res.memoryShare > 0.9 ? 'bg-destructive' : 'bg-primary'}`} style={{ width: `${Math.max(2, Math.round(res.memoryShare * 100))}%` }} />
          </span>
        ) : null}
      </div>
    </div>
  );
}
