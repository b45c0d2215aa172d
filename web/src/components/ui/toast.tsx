import * as React from 'react';
import { X } from 'lucide-react';
import { cn } from '../../lib/utils';

// A small toast system: `toast({title, description, variant})` from anywhere under <Toaster>.
export interface ToastItem {
  id: number;
  title: string;
  description?: string;
  variant?: 'default' | 'destructive' | 'success';
}

type Push = (t: Omit<ToastItem, 'id'>) => void;
const ToastContext = React.createContext<Push>(() => {});

export function useToast(): Push {
  return React.useContext(ToastContext);
}

export function Toaster({ children }: { children: React.ReactNode }) {
  const [items, setItems] = React.useState<ToastItem[]>([]);
  const next = React.useRef(1);
  const dismiss = React.useCallback((id: number) => setItems((xs) => xs.filter((x) => x.id !== id)), []);
  const push = React.useCallback<Push>(
    (t) => {
      const id = next.current++;
      setItems((xs) => [...xs.slice(-4), { ...t, id }]);
      setTimeout(() => dismiss(id), t.variant === 'destructive' ? 8000 : 4000);
    },
    [dismiss],
  );
  return (
    <ToastContext.Provider value={push}>
      {children}
      <div aria-live="polite" className="fixed bottom-4 right-4 z-[60] flex w-80 max-w-[calc(100vw-2rem)] flex-col gap-2">
        {items.map((t) => (
          <div
            key={t.id}
            role={t.variant === 'destructive' ? 'alert' : 'status'}
            className={cn(
              'relative rounded-md border p-3 pr-8 text-sm shadow-md',
              t.variant === 'destructive' ? 'border-red-300 bg-red-50 text-red-900' : t.variant === 'success' ? 'border-green-300 bg-green-50 text-green-900' : 'border-border bg-background',
            )}
          >
            <div className="font-medium">{t.title}</div>
            {t.description ? <div className="mt-0.5 text-xs opacity-90">{t.description}</div> : null}
            <button type="button" aria-label="Dismiss" className="absolute right-2 top-2 opacity-60 hover:opacity-100" onClick={() => dismiss(t.id)}>
              <X className="size-4" />
            </button>
          </div>
        ))}
      </div>
    </ToastContext.Provider>
  );
}
