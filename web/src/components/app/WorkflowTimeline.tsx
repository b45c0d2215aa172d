// One execution, live: its steps from GET /executions/:id, moved on by every
// workflow.progress.update event (and re-read for outputs and attempts), with approve /
// reject / cancel / retry where the role allows (the server checks the same).
import * as React from 'react';
import { Ban, Check, ChevronDown, ChevronRight, RotateCcw, X } from 'lucide-react';
import { ApiError, can, type Execution, type ExecutionStep, type StepStatus } from '../../lib/api';
import { api } from '../../lib/client';
import { useAsync, useLiveEvents, useResync } from '../../lib/hooks';
import { cn, timeAgo } from '../../lib/utils';
import { layout, type Definition } from '../../lib/workflowModel';
import { Badge } from '../ui/badge';
import { Button } from '../ui/button';
import { Input } from '../ui/input';
import { useToast } from '../ui/toast';
import { useSession } from './AppShell';
import { ErrorState, LoadingState } from './states';

type Variant = 'success' | 'warning' | 'destructive' | 'secondary' | 'default' | 'outline';

export const STEP_VARIANT: Record<StepStatus, Variant> = {
  pending: 'secondary',
  dispatched: 'default',
  running: 'default',
  retrying: 'warning',
  waiting: 'warning',
  waiting_approval: 'warning',
  succeeded: 'success',
  failed: 'destructive',
  skipped: 'outline',
  cancelled: 'outline',
};

export const EXEC_VARIANT: Record<Execution['status'], Variant> = {
  pending: 'secondary',
  running: 'default',
  succeeded: 'success',
  failed: 'destructive',
  cancelled: 'outline',
};

const FINISHED = new Set(['succeeded', 'failed', 'cancelled']);

function duration(a?: string | null, b?: string | null): string {
  if (!a) return '';
  const ms = (b ? Date.parse(b) : Date.now()) - Date.parse(a);
  if (!Number.isFinite(ms) || ms < 0) return '';
  return ms < 1000 ? `${ms} ms` : ms < 60000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 60000)} min`;
}

/** `${{ inputs.x }}` filled from the execution's inputs; other expressions are left as written. */
export function fillInputs(template: string, inputs: Record<string, unknown> | null | undefined): string {
  return template.replace(/\$\{\{\s*inputs\.([A-Za-z_][\w-]*)\s*\}\}/g, (whole, name: string) => {
    const v = inputs?.[name];
    return v === undefined ? whole : typeof v === 'string' ? v : JSON.stringify(v);
  });
}

function Json({ value }: { value: unknown }) {
  return <pre className="max-h-48 overflow-auto whitespace-pre-wrap break-all rounded bg-muted p-2 text-xs">{JSON.stringify(value, null, 2)}</pre>;
}

function StepRow({
  step,
  type,
  approvers,
  executionId,
  onDecided,
  className,
  message,
}: {
  message?: string;
  className?: string;
  step: ExecutionStep;
  type?: string;
  approvers: string[];
  executionId: string;
  onDecided: () => void;
}) {
  const { role } = useSession();
  const toast = useToast();
  const [open, setOpen] = React.useState(false);
  const [comment, setComment] = React.useState('');
  const [busy, setBusy] = React.useState(false);
  const mayDecide = step.status === 'waiting_approval' && can(role, 'workflows.write') && approvers.includes(role);

  const decide = async (how: 'approve' | 'reject') => {
    setBusy(true);
    try {
      await (how === 'approve' ? api.executions.approve : api.executions.reject)(executionId, step.stepId, comment.trim() || undefined);
      toast({ title: `${step.stepId} ${how === 'approve' ? 'approved' : 'rejected'}`, variant: 'success' });
      onDecided();
    } catch (e) {
      toast({ title: `Could not ${how}`, description: (e as ApiError).message, variant: 'destructive' });
    } finally {
      setBusy(false);
    }
  };

  const detailsId = `step-${step.stepId}-details`;
  return (
    <li className={cn('grid gap-2 p-3', className)} data-testid="timeline-step" data-step-id={step.stepId} data-status={step.status}>
      <div className="flex flex-wrap items-center gap-2">
        <button
          type="button"
          className="inline-flex items-center gap-1 rounded font-medium focus-visible:outline-2 focus-visible:outline-ring"
          aria-expanded={open}
          aria-controls={detailsId}
          onClick={() => setOpen((o) => !o)}
        >
          {open ? <ChevronDown className="size-4" aria-hidden="true" /> : <ChevronRight className="size-4" aria-hidden="true" />}
          {step.stepId}
        </button>
        {type ? <span className="text-xs text-muted-foreground">{type}</span> : null}
        <Badge variant={STEP_VARIANT[step.status] ?? 'secondary'} data-testid="step-status">
          {step.status.replace('_', ' ')}
        </Badge>
        {step.attempt > 1 ? <span className="text-xs text-muted-foreground">attempt {step.attempt}</span> : null}
        <span className="ml-auto text-xs tabular-nums text-muted-foreground">{duration(step.startedAt, step.completedAt)}</span>
      </div>
      {step.error ? <p className="text-xs text-destructive">{step.error}</p> : null}
      {step.status === 'waiting_approval' && message ? (
        <p className="text-sm" data-testid="approval-message">
          “{message}”
        </p>
      ) : null}
      {step.status === 'waiting_approval' ? (
        mayDecide ? (
          <div className="flex flex-wrap items-center gap-2">
            <Input
              className="h-8 max-w-xs text-xs"
              placeholder="Comment (optional)"
              aria-label={`Comment on ${step.stepId}`}
              value={comment}
              onChange={(e) => setComment(e.target.value)}
              maxLength={2000}
            />
            <Button size="sm" disabled={busy} onClick={() => void decide('approve')} aria-label={`Approve ${step.stepId}`}>
              <Check /> Approve
            </Button>
            <Button size="sm" variant="outline" disabled={busy} onClick={() => void decide('reject')} aria-label={`Reject ${step.stepId}`}>
              <X /> Reject
            </Button>
          </div>
        ) : (
          <p className="text-xs text-muted-foreground">Waiting for a decision by {approvers.join(' or ')}.</p>
        )
      ) : null}
      {open ? (
        <div id={detailsId} className="grid gap-2 text-xs md:grid-cols-2">
          <div>
            <p className="mb-1 font-medium">Inputs</p>
            <Json value={step.inputs ?? null} />
          </div>
          <div>
            <p className="mb-1 font-medium">Outputs</p>
            <Json value={step.outputs ?? null} />
          </div>
          {step.history?.length ? (
            <div className="md:col-span-2">
              <p className="mb-1 font-medium">Attempts</p>
              <ol className="grid gap-1">
                {step.history.map((h) => (
                  <li key={h.attempt} className="flex flex-wrap gap-2">
                    <span className="tabular-nums">#{h.attempt}</span>
                    <Badge variant={h.status === 'succeeded' ? 'success' : 'destructive'}>{h.status}</Badge>
                    {h.kind ? <span>{h.kind}</span> : null}
                    <span className="text-muted-foreground">{duration(h.startedAt, h.finishedAt)}</span>
                    {h.error ? <span className="text-destructive">{h.error}</span> : null}
                    {h.taskId ? <code className="text-muted-foreground">task {h.taskId}</code> : null}
                  </li>
                ))}
              </ol>
            </div>
          ) : null}
        </div>
      ) : null}
    </li>
  );
}

export function WorkflowTimeline({ executionId, def, onStatuses }: { executionId: string; def: Definition | null; onStatuses?: (s: Record<string, StepStatus>) => void }) {
  const { role } = useSession();
  const toast = useToast();
  const exec = useAsync<Execution>(() => api.executions.get(executionId).then((r) => r.data), [executionId]);
  const [liveCount, setLiveCount] = React.useState(0);
  const refetch = React.useRef<ReturnType<typeof setTimeout> | null>(null);

  // Re-read soon after events (outputs, attempts), at most every 250 ms.
  const scheduleReload = React.useCallback(() => {
    if (refetch.current) return;
    refetch.current = setTimeout(() => {
      refetch.current = null;
      api.executions.get(executionId).then(
        (r) => exec.setData(r.data),
        () => {},
      );
    }, 250);
  }, [executionId, exec]);
  React.useEffect(() => () => void (refetch.current && clearTimeout(refetch.current)), []);

  useLiveEvents({ topics: ['workflow.progress.update'], executionId }, (e) => {
    const d = e.data as { status: Execution['status']; error?: string; stepId?: string; stepStatus?: StepStatus; attempt?: number; stepError?: string };
    setLiveCount((n) => n + 1);
    exec.setData((x) => {
      if (!x) return x;
      const next: Execution = { ...x, status: d.status ?? x.status, error: d.error ?? x.error };
      if (d.stepId && d.stepStatus) {
        const steps = x.steps ?? [];
        const known = steps.some((s) => s.stepId === d.stepId);
        next.steps = known
          ? steps.map((s) => (s.stepId === d.stepId ? { ...s, status: d.stepStatus!, attempt: d.attempt ?? s.attempt, error: d.stepError ?? s.error } : s))
          : [...steps, { stepId: d.stepId, status: d.stepStatus, attempt: d.attempt ?? 0, error: d.stepError ?? null }];
      }
      return next;
    });
    scheduleReload();
  });
  useResync(exec.reload);
  // The rendered message of a gate comes with approval.requested; before one is seen here
  // (the page opened later) the definition's message is shown with its inputs filled in.
  const [asked, setAsked] = React.useState<Record<string, string>>({});
  useLiveEvents({ topics: ['approval.requested'], executionId }, (e) => {
    const d = e.data as { stepId: string; message?: string };
    if (typeof d.message === 'string') setAsked((m) => ({ ...m, [d.stepId]: d.message! }));
  });

  const statuses = React.useMemo(() => Object.fromEntries((exec.data?.steps ?? []).map((s) => [s.stepId, s.status])), [exec.data?.steps]);
  React.useEffect(() => onStatuses?.(statuses), [statuses, onStatuses]);

  if (exec.loading && !exec.data) return <LoadingState label="Loading the execution" rows={3} />;
  if (exec.error && !exec.data) return <ErrorState error={exec.error} onRetry={exec.reload} />;
  const x = exec.data!;
  const stepDefs = new Map((def?.steps ?? []).map((s) => [String(s.id), s]));
  // Steps in the order they can run: by layer of the graph, then as written.
  const pos = def ? layout(def) : {};
  const order = new Map((def?.steps ?? []).map((s, i) => [String(s.id), (pos[String(s.id)]?.x ?? 0) * 10000 + i]));
  const steps = [...(x.steps ?? [])].sort((a, b) => {
    const ka = order.get(a.parentStep ?? a.stepId) ?? 1e9;
    const kb = order.get(b.parentStep ?? b.stepId) ?? 1e9;
    return ka - kb || a.stepId.localeCompare(b.stepId, undefined, { numeric: true });
  });
  const writer = can(role, 'workflows.write');

  const act = async (what: 'cancel' | 'retry') => {
    try {
      const { data } = await api.executions[what](x.id);
      exec.setData((old) => ({ ...old!, ...data, steps: data.steps ?? old?.steps }));
      scheduleReload();
    } catch (e) {
      toast({ title: `Could not ${what}`, description: (e as ApiError).message, variant: 'destructive' });
    }
  };

  return (
    <section className="grid gap-3" aria-label="Execution timeline" data-testid="timeline" data-status={x.status} data-live-events={liveCount}>
      <div className="flex flex-wrap items-center gap-2">
        <h3 className="font-semibold">Execution</h3>
        <code className="text-xs text-muted-foreground">{x.id}</code>
        <Badge variant={EXEC_VARIANT[x.status]} data-testid="execution-status">
          {x.status}
        </Badge>
        <span className="text-xs text-muted-foreground">
          version {x.workflowVersion} · {x.cause} · started {timeAgo(x.startedAt ?? x.createdAt)}
          {x.completedAt ? ` · took ${duration(x.startedAt ?? x.createdAt, x.completedAt)}` : ''}
        </span>
        <div className="ml-auto flex gap-2">
          {writer && !FINISHED.has(x.status) ? (
            <Button size="sm" variant="outline" onClick={() => void act('cancel')} disabled={x.cancelRequested}>
              <Ban /> {x.cancelRequested ? 'Cancelling…' : 'Cancel'}
            </Button>
          ) : null}
          {writer && (x.status === 'failed' || x.status === 'cancelled') ? (
            <Button size="sm" variant="outline" onClick={() => void act('retry')}>
              <RotateCcw /> Retry
            </Button>
          ) : null}
        </div>
      </div>
      {x.error ? <p className="text-sm text-destructive">{x.error}</p> : null}
      <ol className="divide-y divide-border rounded-md border border-border" data-testid="timeline-steps">
        {steps.map((s) => {
          const sd = stepDefs.get(s.parentStep ?? s.stepId);
          const approvers = Array.isArray(sd?.approvers) ? (sd!.approvers as string[]) : ['admin', 'operator'];
          return (
            <StepRow
              key={s.stepId}
              className={cn(s.parentStep && 'pl-8')}
              step={s}
              type={sd ? String(sd.type) : undefined}
              approvers={approvers}
              executionId={x.id}
              onDecided={scheduleReload}
              message={asked[s.stepId] ?? (typeof sd?.message === 'string' ? fillInputs(sd.message, x.inputs) : undefined)}
            />
          );
        })}
      </ol>
      <div className="grid gap-2 text-xs md:grid-cols-2">
        <div>
          <p className="mb-1 font-medium">Inputs</p>
          <Json value={x.inputs} />
        </div>
        <div>
          <p className="mb-1 font-medium">Outputs</p>
          <Json value={x.outputs} />
        </div>
      </div>
    </section>
  );
}
