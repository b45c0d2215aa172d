// The figures of the AgentMetrics charts, from an agent's tasks and metric rows.
import type { AgentMetric, Task } from './api';

export interface MetricsSummary {
  durations: { task: string; ms: number; status: Task['status'] }[];
  finished: number;
  succeeded: number;
  failed: number;
  tokens: { task: string; input: number; output: number }[];
}

/** Pure: the figures the charts draw, from tasks (newest first) and metric rows. */
export function summarize(tasks: Task[], metrics: AgentMetric[]): MetricsSummary {
  const done = tasks.filter((t) => t.status === 'succeeded' || t.status === 'failed' || t.status === 'cancelled');
  const durations = [...done].reverse().map((t) => {
    const wall = t.result?.wallMs;
    const ms = typeof wall === 'number' ? wall : t.startedAt && t.finishedAt ? Date.parse(t.finishedAt) - Date.parse(t.startedAt) : 0;
    return { task: t.id.slice(-6), ms, status: t.status };
  });
  const byTask = new Map<string, { input: number; output: number }>();
  for (const m of metrics) {
    const k = m.taskId ?? '';
    const row = byTask.get(k) ?? { input: 0, output: 0 };
    if (m.metricType.endsWith('input_tokens')) row.input += m.value;
    else if (m.metricType.endsWith('output_tokens')) row.output += m.value;
    else continue;
    byTask.set(k, row);
  }
  return {
    durations,
    finished: done.length,
    succeeded: done.filter((t) => t.status === 'succeeded').length,
    failed: done.filter((t) => t.status === 'failed').length,
    tokens: [...byTask].map(([task, v]) => ({ task: task ? task.slice(-6) : 'none', ...v })),
  };
}
