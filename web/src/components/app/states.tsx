import { AlertTriangle, Inbox, RefreshCw } from 'lucide-react';
import type { ApiError } from '../../lib/api';
import { Alert, AlertDescription, AlertTitle } from '../ui/alert';
import { Button } from '../ui/button';
import { Skeleton } from '../ui/skeleton';

export function LoadingState({ label = 'Loading', rows = 3 }: { label?: string; rows?: number }) {
  return (
    <div role="status" aria-live="polite" aria-label={label} className="grid gap-2" data-state="loading">
      <span className="sr-only">{label}…</span>
      {Array.from({ length: rows }, (_, i) => (
        <Skeleton key={i} className="h-16 w-full" />
      ))}
    </div>
  );
}

export function EmptyState({ title, children }: { title: string; children?: React.ReactNode }) {
  return (
    <div className="flex flex-col items-center gap-2 rounded-lg border border-dashed border-border p-8 text-center" data-state="empty">
      <Inbox className="size-8 text-muted-foreground" aria-hidden="true" />
      <p className="font-medium">{title}</p>
      {children ? <div className="text-sm text-muted-foreground">{children}</div> : null}
    </div>
  );
}

export function ErrorState({ error, onRetry, title = 'Could not load this' }: { error: ApiError; onRetry?: () => void; title?: string }) {
  const forbidden = error.status === 403;
  return (
    <Alert variant="destructive" data-state="error">
      <div className="flex items-start gap-3">
        <AlertTriangle className="mt-0.5 size-4 shrink-0" aria-hidden="true" />
        <div className="flex-1">
          <AlertTitle>{forbidden ? 'Your role cannot see this' : title}</AlertTitle>
          <AlertDescription>
            {error.message} <span className="text-xs opacity-70">({error.code}{error.requestId ? `, request ${error.requestId}` : ''})</span>
          </AlertDescription>
        </div>
        {onRetry && !forbidden ? (
          <Button size="sm" variant="outline" onClick={onRetry}>
            <RefreshCw /> Retry
          </Button>
        ) : null}
      </div>
    </Alert>
  );
}
