/**
 * Workspace management: create a workspace with metadata, list every
 * workspace, delete one with all its contents.
 */
import { connect, type ConnectOptions, type Workspace } from 'nexus';
import { runIfMain } from './run.js';

export interface WorkspaceManagementResult {
  created: Workspace;
  /** Workspaces before the delete. */
  listed: Workspace[];
  /** Workspaces after the delete. */
  remaining: Workspace[];
  /** Whether /workspace/old-project still exists as a directory afterwards. */
  oldProjectExists: boolean;
}

export async function main(options: ConnectOptions): Promise<WorkspaceManagementResult> {
  const nx = await connect(options);
  try {
    // Create workspace with metadata
    const created = await nx.workspace.create('/workspace/project-alpha', {
      metadata: {
        project: 'Alpha Initiative',
        team: 'backend',
        created_by: 'admin',
        budget: 50000,
      },
    });

    // An old project, with some contents, to delete below
    await nx.workspace.create('/workspace/old-project', { metadata: { project: 'Legacy' } });
    await nx.write('/workspace/old-project/notes/todo.md', '- archive this\n', { parents: true });

    // Get all workspaces
    const listed = await nx.workspace.list();
    for (const ws of listed) {
      console.log(`
    Path: ${ws.path}
    Created: ${ws.created_at}
    Metadata: ${JSON.stringify(ws.metadata ?? {})}`);
    }

    // Delete workspace and all contents
    await nx.workspace.delete('/workspace/old-project');

    const remaining = await nx.workspace.list();
    const oldProjectExists = await nx.exists('/workspace/old-project');
    console.log(`\nDeleted /workspace/old-project; ${remaining.length} workspace(s) left`);
    return { created, listed, remaining, oldProjectExists };
  } finally {
    await nx.close();
  }
}

runIfMain(import.meta.url, main);
