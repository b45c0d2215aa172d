// The agent cards' live state: what `GET /api/v1/agents/activity` answered, moved on by the
// `agent.task.update` and `agent.resources` events. Pure functions, so the grid and the tests
// share them.
import type { AgentActivity, AgentResources } from './api';
import { formatBytes } from './utils';

/** The `agent.task.update` payload (docs/api.md). */
export interface TaskEventData {
  taskId: string;
  agentId: string;
  status: string;
  attempts?: number;
  summary?: string;
  startedAt?: string;
}

/** The `agent.resources` payload (docs/api.md). */
export interface ResourcesEventData {
  agentId: string;
  cpuPercent: number | null;
  memoryBytes: number;
  memoryLimitBytes: number;
  tasks: number;
  timestamp: string;
}

const FINISHED = new Set(['succeeded', 'failed', 'cancelled']);

/**
 * `prev` after a task event, and whether the card must ask the server again (a task ended
 * while another of the agent's tasks still runs: which one is current now is the server's to say).
 * An agent the grid has not loaded (`prev` undefined) gets a state only when a task starts.
 */
export function applyTaskEvent(
  prev: AgentActivity | undefined,
  d: TaskEventData,
): { next: AgentActivity | undefined; refetch: boolean } {
  if (d.status === 'running') {
    const base: AgentActivity = prev ?? { agentId: d.agentId, currentTask: null, runningTasks: 0, resources: { available: true, cpuPercent: null, memoryBytes: null, memoryLimitBytes: null, tasks: null, sampledAt: null } };
    if (base.currentTask?.id === d.taskId) return { next: base, refetch: false };
    return {
      next: {
        ...base,
        runningTasks: base.runningTasks + 1,
        currentTask: base.currentTask ?? { id: d.taskId, summary: d.summary ?? d.taskId, startedAt: d.startedAt ?? null, attempts: d.attempts ?? 1 },
      },
      refetch: prev === undefined,
    };
  }
  if (!prev || !FINISHED.has(d.status)) return { next: prev, refetch: false };
  const runningTasks = Math.max(0, prev.runningTasks - 1);
  if (prev.currentTask?.id !== d.taskId) return { next: { ...prev, runningTasks }, refetch: false };
  return { next: { ...prev, currentTask: null, runningTasks }, refetch: runningTasks > 0 };
}

/** `prev` after an `agent.resources` sample. */
export function applyResources(prev: AgentActivity | undefined, d: ResourcesEventData): AgentActivity {
  const resources: AgentResources = {
    available: true,
    cpuPercent: d.cpuPercent,
    memoryBytes: d.memoryBytes,
    memoryLimitBytes: d.memoryLimitBytes,
    tasks: d.tasks,
    sampledAt: d.timestamp,
  };
  return { ...(prev ?? { agentId: d.agentId, currentTask: null, runningTasks: 0 }), resources };
}

/** "42 s", "3 min 05 s", "2 h 07 min" for how long a task has run. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
}

/** The card's resource line: figures, "n/a" with the reason, or that nothing was sampled yet. */
export function describeResources(r: AgentResources | undefined): { text: string; title?: string; memoryShare?: number } {
  if (!r) return { text: 'no sample yet' };
  if (!r.available) return { text: 'n/a', title: r.reason };
  if (r.memoryBytes === null) return { text: 'no sample yet', title: 'sampled while a task runs' };
  const cpu = r.cpuPercent === null ? 'CPU n/a' : `CPU ${r.cpuPercent.toFixed(r.cpuPercent < 10 ? 1 : 0)}%`;
  const limit = r.memoryLimitBytes ? ` / ${formatBytes(r.memoryLimitBytes)}` : '';
  return {
    text: `${cpu} · mem ${formatBytes(r.memoryBytes)}${limit}`,
    memoryShare: r.memoryLimitBytes ? Math.min(1, r.memoryBytes / r.memoryLimitBytes) : undefined,
  };
}
