/**
 * Agent session tracking: start a session for an agent, tag writes with it
 * (explicitly, or by running inside nx.session.context()), list only the
 * files the session wrote, and list an agent's sessions.
 */
import { connect, type ConnectOptions, type FileInfo, type Session } from 'nexus';
import { runIfMain } from './run.js';

export interface AgentSessionsResult {
  session: Session;
  /** nx.list('/agent/memory', { filter: { sessionId } }) inside the session. */
  filesInSession: FileInfo[];
  /** Everything under /agent/memory, whoever wrote it. */
  allFiles: FileInfo[];
  /** nx.session.list({ agentId: 'gpt-4-agent' }). */
  sessions: Session[];
}

export async function main(options: ConnectOptions): Promise<AgentSessionsResult> {
  const nx = await connect(options);
  try {
    // Start agent session
    const session = await nx.session.create({
      agentId: 'gpt-4-agent',
      metadata: {
        user_id: 'user_123',
        conversation_id: 'conv_456',
        started_at: new Date().toISOString(),
      },
    });
    const sessionId = session.session_id;
    console.log(`Session ID: ${sessionId}`);

    // Another agent's session, and a file written outside any session
    await nx.session.create({ agentId: 'claude-agent', metadata: { user_id: 'user_789' } });
    await nx.mkdir('/agent/memory', { parents: true });
    await nx.write('/agent/memory/notes.md', 'written by a person, not by the agent\n');

    // Operations within session context
    const filesInSession = await nx.session.context(sessionId, async (s) => {
      // Write files associated with this session
      await nx.write('/agent/memory/conversation.json', JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] }), {
        context: { sessionId: s.id },
      });
      // Inside the context, writes are tagged without saying so
      await nx.write('/agent/memory/summary.txt', 'The user said hi.\n');

      // Session metadata automatically tracked
      return nx.list('/agent/memory', { filter: { sessionId: s.id } });
    });
    console.log(`Files in session: ${filesInSession.map((f) => f.name).join(', ')}`);

    // List all sessions for an agent
    const sessions = await nx.session.list({ agentId: 'gpt-4-agent' });
    for (const s of sessions) {
      console.log(`
    Session: ${s.session_id}
    Agent: ${s.agent_id}
    Started: ${s.created_at}
    Files: ${s.file_count ?? 0}`);
    }

    const allFiles = await nx.list('/agent/memory');
    return { session, filesInSession, allFiles, sessions };
  } finally {
    await nx.close();
  }
}

runIfMain(import.meta.url, main);
