import { GitBranch } from 'lucide-react';
import { AppShell } from './AppShell';
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from '../ui/card';

export default function WorkflowsPage() {
  return (
    <AppShell page="workflows" title="Workflows">
      <Card data-state="empty">
        <CardHeader>
          <CardTitle className="flex items-center gap-2">
            <GitBranch className="size-5" aria-hidden="true" /> Coming with the workflow engine
          </CardTitle>
          <CardDescription>This server does not run workflows yet.</CardDescription>
        </CardHeader>
        <CardContent className="text-sm text-muted-foreground">
          When the workflow engine lands, this page lists workflows, draws them on a canvas you can edit (with the YAML side by side), starts runs and
          follows each execution live, with approve, reject, cancel and retry where your role allows. Until then, agents can be created and operated on the{' '}
          <a className="text-primary underline" href="/agents">
            Agents
          </a>{' '}
          page.
        </CardContent>
      </Card>
    </AppShell>
  );
}
