-- Per-task options given at creation: the git repository and base ref the agent works on (in
-- its own worktree) and the task's budget (limits). A JSON object: {repo?, baseRef?, limits?}.
ALTER TABLE agent_tasks ADD COLUMN options TEXT NOT NULL DEFAULT '{}';
