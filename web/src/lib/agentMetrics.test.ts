import { describe, expect, it } from 'vitest';
import type { AgentMetric, Task } from './api';
import { summarize } from './agentMetrics';

function task(id: string, status: Task['status'], wallMs?: number, startedAt?: string, finishedAt?: string): Task {
  return {
    id,
    agentId: 'a',
    idempotencyKey: id,
    input: '',
    status,
    result: wallMs === undefined ? null : { wallMs },
    error: null,
    attempts: 1,
    createdAt: '2026-11-26T12:00:00Z',
    startedAt: startedAt ?? null,
    finishedAt: finishedAt ?? null,
  };
}

function metric(taskId: string | null, metricType: string, value: number): AgentMetric {
  return { id: 1, agentId: 'a', taskId, metricType, value, labels: {}, timestamp: '2026-11-26T12:00:00Z' };
}

describe('agent metrics summary', () => {
  it('durations oldest first, success rate over finished tasks only, tokens per task', () => {
    const tasks = [
      task('t-000003', 'running'),
      task('t-000002', 'failed', undefined, '2026-11-26T12:00:00.000Z', '2026-11-26T12:00:00.250Z'),
      task('t-000001', 'succeeded', 40),
    ];
    const s = summarize(tasks, [
      metric('t-000001', 'llm.input_tokens', 100),
      metric('t-000001', 'llm.output_tokens', 20),
      metric('t-000001', 'llm.input_tokens', 50),
      metric('t-000001', 'llm.latency_ms', 999),
    ]);
    expect(s.durations).toEqual([
      { task: '000001', ms: 40, status: 'succeeded' },
      { task: '000002', ms: 250, status: 'failed' },
    ]);
    expect([s.finished, s.succeeded, s.failed]).toEqual([2, 1, 1]);
    expect(s.tokens).toEqual([{ task: '000001', input: 150, output: 20 }]);
  });

  it('nothing yet is nothing, not NaN', () => {
    expect(summarize([], [])).toEqual({ durations: [], finished: 0, succeeded: 0, failed: 0, tokens: [] });
  });
});
