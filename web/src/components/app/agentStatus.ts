import type { AgentStatus } from '../../lib/api';

export const STATUS_VARIANT: Record<AgentStatus, 'success' | 'warning' | 'destructive' | 'secondary' | 'default' | 'outline'> = {
  created: 'outline',
  starting: 'warning',
  running: 'success',
  stopping: 'warning',
  stopped: 'secondary',
  error: 'destructive',
  decommissioned: 'secondary',
};

export const STATUS_COLOR: Record<AgentStatus, string> = {
  created: '#64748b',
  starting: '#d97706',
  running: '#16a34a',
  stopping: '#d97706',
  stopped: '#94a3b8',
  error: '#dc2626',
  decommissioned: '#cbd5e1',
};

/** What the lifecycle allows from each status (docs/api.md, Agent lifecycle). */
export function canStart(s: AgentStatus) {
  return s === 'created' || s === 'stopped' || s === 'error';
}
export function canStop(s: AgentStatus) {
  return s === 'starting' || s === 'running' || s === 'error';
}
