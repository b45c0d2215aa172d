import { renderToStaticMarkup } from 'react-dom/server';
import { describe, expect, it } from 'vitest';
import type { AgentActivity, AgentStatus } from '../../lib/api';
import { applyResources, applyTaskEvent, describeResources, formatDuration } from '../../lib/agentActivity';
import { CardActivity } from './AgentCardActivity';

const T0 = Date.parse('2026-11-27T01:00:00.000Z');

function render(status: AgentStatus, activity: AgentActivity | undefined, now = T0 + 83_000) {
  return renderToStaticMarkup(<CardActivity agentName="burner" status={status} activity={activity} now={now} onLogs={() => {}} />);
}

function text(html: string) {
  return html.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim();
}

const busy: AgentActivity = {
  agentId: 'a1',
  currentTask: { id: 't1', summary: 'build the docs', startedAt: '2026-11-27T01:00:00.000Z', attempts: 1 },
  runningTasks: 1,
  resources: { available: true, cpuPercent: 97.4, memoryBytes: 32 * 1024 * 1024, memoryLimitBytes: 256 * 1024 * 1024, tasks: 1, sampledAt: '2026-11-27T01:01:20.000Z' },
};
const idle: AgentActivity = {
  agentId: 'a1',
  currentTask: null,
  runningTasks: 0,
  resources: { available: true, cpuPercent: 0, memoryBytes: 0, memoryLimitBytes: 0, tasks: 0, sampledAt: '2026-11-27T01:01:20.000Z' },
};

describe('agent card activity', () => {
  it('shows the current task, how long it has run, a logs button and the resource figures', () => {
    const html = render('running', busy);
    expect(html).toContain('data-testid="agent-current-task"');
    expect(html).toContain('data-task-id="t1"');
    const t = text(html);
    expect(t).toContain('build the docs');
    expect(t).toContain('1 min 23 s');
    expect(t).toContain('Logs');
    expect(t).toContain('CPU 97% · mem 32.0 MiB / 256.0 MiB');
    expect(html).toContain('aria-valuenow="13"'); // 32 of 256 MiB
    expect(html).not.toContain('agent-idle');
  });

  it('says idle without a task, and "loading" before the first answer', () => {
    expect(text(render('running', idle))).toContain('idle');
    expect(text(render('running', idle))).toContain('CPU 0.0% · mem 0 B');
    expect(text(render('running', undefined))).toContain('loading…');
    expect(text(render('running', undefined))).toContain('no sample yet');
  });

  it('says n/a, with the reason, where devplane cannot measure', () => {
    const html = render('running', { ...idle, resources: { available: false, reason: 'a remote agent runs outside devplane' } });
    expect(text(html)).toContain('n/a (a remote agent runs outside devplane)');
    expect(html).not.toContain('role="meter"');
  });

  it('is absent for stopped agents without a task, present while one still finishes', () => {
    expect(render('stopped', idle)).toBe('');
    expect(render('created', undefined)).toBe('');
    expect(render('stopped', busy)).toContain('agent-current-task');
  });

  it('warns when memory nears its limit', () => {
    const html = render('running', { ...busy, resources: { ...busy.resources, memoryBytes: 250 * 1024 * 1024 } as AgentActivity['resources'] });
    expect(html).toContain('bg-destructive');
  });
});

describe('agent activity events', () => {
  it('a task that starts becomes current; its end clears it', () => {
    const start = applyTaskEvent(idle, { taskId: 't9', agentId: 'a1', status: 'running', summary: 'lint', startedAt: '2026-11-27T01:02:00.000Z', attempts: 1 });
    expect(start.refetch).toBe(false);
    expect(start.next?.currentTask).toEqual({ id: 't9', summary: 'lint', startedAt: '2026-11-27T01:02:00.000Z', attempts: 1 });
    expect(start.next?.runningTasks).toBe(1);
    // The same event again (a resend) changes nothing.
    expect(applyTaskEvent(start.next, { taskId: 't9', agentId: 'a1', status: 'running' }).next).toBe(start.next);
    const end = applyTaskEvent(start.next, { taskId: 't9', agentId: 'a1', status: 'succeeded' });
    expect(end.next?.currentTask).toBeNull();
    expect(end.next?.runningTasks).toBe(0);
    expect(end.refetch).toBe(false);
  });

  it('a second task waits behind the current one; when the current ends the server is asked which is next', () => {
    const a = applyTaskEvent(busy, { taskId: 't2', agentId: 'a1', status: 'running', summary: 'second' }).next;
    expect(a?.currentTask?.id).toBe('t1');
    expect(a?.runningTasks).toBe(2);
    const b = applyTaskEvent(a, { taskId: 't1', agentId: 'a1', status: 'failed' });
    expect(b.next?.currentTask).toBeNull();
    expect(b.refetch).toBe(true);
  });

  it('queued events and events of unknown agents that are not starts change nothing', () => {
    expect(applyTaskEvent(idle, { taskId: 't3', agentId: 'a1', status: 'queued' }).next).toBe(idle);
    expect(applyTaskEvent(undefined, { taskId: 't3', agentId: 'a2', status: 'cancelled' }).next).toBeUndefined();
    // An unknown agent's start makes a state and asks the server for the rest.
    const r = applyTaskEvent(undefined, { taskId: 't3', agentId: 'a2', status: 'running' });
    expect(r.next?.currentTask?.summary).toBe('t3');
    expect(r.refetch).toBe(true);
  });

  it('a resource sample replaces the figures and keeps the task', () => {
    const next = applyResources(busy, { agentId: 'a1', cpuPercent: null, memoryBytes: 1024, memoryLimitBytes: 0, tasks: 1, timestamp: 'x' });
    expect(next.currentTask).toBe(busy.currentTask);
    expect(describeResources(next.resources).text).toBe('CPU n/a · mem 1.0 KiB');
  });

  it('formats durations', () => {
    expect(formatDuration(-5)).toBe('0 s');
    expect(formatDuration(59_999)).toBe('59 s');
    expect(formatDuration(65_000)).toBe('1 min 05 s');
    expect(formatDuration(2 * 3600_000 + 7 * 60_000)).toBe('2 h 07 min');
  });
});
