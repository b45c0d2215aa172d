// The visual builder: a node per step, an edge per need, drawn with @xyflow/react.
// The definition is owned by the caller; every edit here is a workflowModel function.
import * as React from 'react';
import {
  Background,
  Controls,
  Handle,
  MarkerType,
  Position,
  ReactFlow,
  type Connection,
  type Edge,
  type EdgeChange,
  type Node,
  type NodeChange,
  type NodeProps,
  type ReactFlowInstance,
  type ReactFlowState,
  useStore,
} from '@xyflow/react';
import '@xyflow/react/dist/style.css';
import { AlertTriangle } from 'lucide-react';
import type { DefinitionProblem, StepStatus } from '../../lib/api';
import { connect, disconnect, removeStep, toGraph, type Definition, type Step } from '../../lib/workflowModel';
import { cn } from '../../lib/utils';

type StepData = { step: Step; problems: DefinitionProblem[]; status?: StepStatus };
type StepNodeType = Node<StepData, 'step'>;

const STATUS_RING: Partial<Record<StepStatus, string>> = {
  running: 'border-blue-500',
  dispatched: 'border-blue-400',
  retrying: 'border-amber-500',
  waiting: 'border-amber-400',
  waiting_approval: 'border-amber-500',
  succeeded: 'border-green-600',
  failed: 'border-red-600',
  skipped: 'border-slate-300',
  cancelled: 'border-slate-400',
};

function summary(step: Step): string {
  const v = step.agent ?? step.tool ?? step.workflow ?? step.duration ?? step.message;
  if (v === undefined) return '';
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** Below this zoom a step's text cannot be read: nodes are drawn as plain boxes (coloured by
 * status and problems, the step id in the tooltip and the accessible name). */
const DETAIL_ZOOM = 0.45;
const detailedZoom = (s: ReactFlowState) => s.transform[2] >= DETAIL_ZOOM;

/** Workflows from this many steps get the cheaper drawing: only what is in view, straight
 * edges with a thin hit area, no raising of the selected node. */
const LARGE = 60;
const NO_PROBLEMS: Record<string, DefinitionProblem[]> = {};

const StepNode = React.memo(function StepNode({ data, selected }: NodeProps<StepNodeType>) {
  const { step, problems, status } = data;
  const bad = problems.length > 0;
  // A boolean: a node redraws when the zoom crosses the threshold, not on every zoom step.
  const detailed = useStore(detailedZoom);
  const border = bad ? 'border-red-600' : status ? (STATUS_RING[status] ?? 'border-border') : 'border-border';
  if (!detailed) {
    return (
      <div
        data-testid="wf-node"
        data-step-id={String(step.id)}
        data-problems={problems.length}
        data-status={status}
        data-detail="box"
        // Drawn at a tenth of their size or less: filled, with thick borders, to stay visible.
        className={cn(
          'h-[58px] w-[220px] rounded-md border-[10px] bg-slate-300',
          bad || status ? border : 'border-slate-500',
          selected && 'outline outline-[24px] outline-primary',
        )}
        title={[String(step.id), ...problems.map((p) => `${p.path}: ${p.message ?? p.code}`)].join('\n')}
      >
        <Handle type="target" position={Position.Left} aria-label={`needs of ${step.id}`} />
        <Handle type="source" position={Position.Right} aria-label={`${step.id} is needed by`} />
      </div>
    );
  }
  return (
    <div
      data-testid="wf-node"
      data-step-id={String(step.id)}
      data-problems={problems.length}
      data-status={status}
      className={cn(
        'w-[220px] rounded-md border-2 bg-background px-3 py-2 text-left text-xs shadow-sm',
        border,
        selected && 'ring-2 ring-primary ring-offset-1',
      )}
      title={problems.map((p) => `${p.path}: ${p.message ?? p.code}`).join('\n') || undefined}
    >
      <Handle type="target" position={Position.Left} aria-label={`needs of ${step.id}`} />
      <div className="flex items-center justify-between gap-2">
        <span className="truncate font-semibold">{String(step.id)}</span>
        <span className="rounded bg-muted px-1.5 py-0.5 text-[10px] uppercase text-muted-foreground">{String(step.type)}</span>
      </div>
      <div className="mt-1 truncate text-muted-foreground">{status ? status.replace('_', ' ') : summary(step) || '\u00a0'}</div>
      {bad ? (
        <div className="mt-1 flex items-start gap-1 text-red-700" data-testid="wf-node-problem">
          <AlertTriangle className="mt-px size-3 shrink-0" aria-hidden="true" />
          <span className="line-clamp-2">
            {problems[0].code}
            {problems[0].message ? `: ${problems[0].message}` : ''}
            {problems.length > 1 ? ` (+${problems.length - 1})` : ''}
          </span>
        </div>
      ) : null}
      <Handle type="source" position={Position.Right} aria-label={`${step.id} is needed by`} />
    </div>
  );
});

const nodeTypes = { step: StepNode };
const ARROW = { type: MarkerType.ArrowClosed };

export interface WorkflowCanvasProps {
  def: Definition;
  problems?: Record<string, DefinitionProblem[]>;
  statuses?: Record<string, StepStatus>;
  readOnly?: boolean;
  selected?: string | null;
  onSelect?: (id: string | null) => void;
  /** An edit, applied by the owner to its newest definition (not to the one drawn here, which
   * may lag behind a step field's pending text). */
  onChange?: (edit: (def: Definition) => Definition) => void;
  className?: string;
}

export function WorkflowCanvas({ def, problems = NO_PROBLEMS, statuses, readOnly, selected, onSelect, onChange, className }: WorkflowCanvasProps) {
  // Where the user dragged nodes; the rest are laid out from the needs.
  const [positions, setPositions] = React.useState<Record<string, { x: number; y: number }>>({});
  const graph = React.useMemo(() => toGraph(def, positions, problems), [def, positions, problems]);
  // Node and edge objects are reused while what they show is unchanged, so that an edit of one
  // step (or a selection) redraws that node only, not all of a large workflow.
  const nodeCache = React.useRef(new Map<string, StepNodeType>());
  const nodes: StepNodeType[] = React.useMemo(() => {
    const next = new Map<string, StepNodeType>();
    const out = graph.nodes.map((n) => {
      const status = statuses?.[n.id];
      const isSelected = n.id === selected;
      const prev = nodeCache.current.get(n.id);
      const node =
        prev &&
        prev.data.step === n.data.step &&
        prev.data.problems === n.data.problems &&
        prev.data.status === status &&
        prev.selected === isSelected &&
        prev.position.x === n.position.x &&
        prev.position.y === n.position.y
          ? prev
          : { id: n.id, type: 'step' as const, position: n.position, data: { ...n.data, status }, selected: isSelected, ariaLabel: `step ${n.id}` };
      next.set(n.id, node);
      return node;
    });
    nodeCache.current = next;
    return out;
  }, [graph.nodes, statuses, selected]);
  const large = def.steps.length >= LARGE;
  const edgeCache = React.useRef(new Map<string, Edge>());
  const edgeLook = React.useRef(large);
  const edges: Edge[] = React.useMemo(() => {
    // The cached edges are drawn the way the size asked for when they were made.
    if (edgeLook.current !== large) edgeCache.current.clear();
    edgeLook.current = large;
    const next = new Map<string, Edge>();
    const out = graph.edges.map((e) => {
      const edge =
        edgeCache.current.get(e.id) ??
        (large
          ? { ...e, type: 'straight', interactionWidth: 6, markerEnd: ARROW, ariaLabel: `${e.target} needs ${e.source}` }
          : { ...e, markerEnd: ARROW, ariaLabel: `${e.target} needs ${e.source}` });
      next.set(e.id, edge);
      return edge;
    });
    edgeCache.current = next;
    return out;
  }, [graph.edges, large]);

  // Re-fit when steps or needs come or go (the layout moves then), not on every edit.
  const flow = React.useRef<ReactFlowInstance<StepNodeType, Edge> | null>(null);
  const shape = `${def.steps.length}:${graph.edges.length}`;
  React.useEffect(() => {
    const t = setTimeout(() => void flow.current?.fitView({ maxZoom: 1, padding: 0.2 }), 30);
    return () => clearTimeout(t);
  }, [shape]);

  const onNodesChange = React.useCallback(
    (changes: NodeChange<StepNodeType>[]) => {
      const removed: string[] = [];
      for (const c of changes) {
        if (c.type === 'position' && c.position) {
          const p = c.position;
          setPositions((ps) => ({ ...ps, [c.id]: p }));
        } else if (c.type === 'select' && c.selected) {
          onSelect?.(c.id);
        } else if (c.type === 'remove' && !readOnly) {
          removed.push(c.id);
        }
      }
      if (removed.length) onChange?.((d) => removed.reduce(removeStep, d));
    },
    [onChange, onSelect, readOnly],
  );

  const onEdgesChange = React.useCallback(
    (changes: EdgeChange[]) => {
      if (readOnly) return;
      const cut: { source: string; target: string }[] = [];
      for (const c of changes) {
        if (c.type !== 'remove') continue;
        const e = graph.edges.find((x) => x.id === c.id);
        if (e) cut.push(e);
      }
      if (cut.length) onChange?.((d) => cut.reduce((x, e) => disconnect(x, e.source, e.target), d));
    },
    [graph.edges, onChange, readOnly],
  );

  const onConnect = React.useCallback(
    (c: Connection) => {
      if (readOnly || !c.source || !c.target) return;
      const { source, target } = c;
      onChange?.((d) => connect(d, source, target));
    },
    [onChange, readOnly],
  );

  return (
    <div className={cn('h-[420px] w-full rounded-md border border-border bg-muted/30 [contain:strict]', className)} data-testid="wf-canvas">
      <ReactFlow
        nodes={nodes}
        edges={edges}
        nodeTypes={nodeTypes}
        onNodesChange={onNodesChange}
        onEdgesChange={onEdgesChange}
        onConnect={onConnect}
        onPaneClick={() => onSelect?.(null)}
        onInit={(f) => {
          flow.current = f;
        }}
        nodesConnectable={!readOnly}
        nodesDraggable
        elementsSelectable
        deleteKeyCode={readOnly ? null : ['Delete', 'Backspace']}
        onlyRenderVisibleElements={large}
        elevateNodesOnSelect={!large}
        fitView
        fitViewOptions={{ maxZoom: 1, padding: 0.2 }}
        minZoom={0.1}
        proOptions={{ hideAttribution: true }}
      >
        <Background gap={16} size={1} />
        <Controls showInteractive={false} />
      </ReactFlow>
    </div>
  );
}
