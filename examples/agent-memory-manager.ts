/**
 * An AI agent's memory: one folder per conversation session under the
 * agent's folder, the conversation saved there (tagged with the session),
 * checkpointed with a snapshot of just that session's folder, and recalled.
 */
import { connect, type ConnectOptions, type NexusClient, type Session } from 'nexus';
import { runIfMain } from './run.js';

export interface Message {
  role: 'user' | 'assistant' | 'system';
  content: string;
}

export interface Conversation {
  messages: Message[];
  timestamp: string;
}

export class AgentMemoryManager {
  readonly workspacePath: string;

  private constructor(
    readonly nx: NexusClient,
    readonly agentId: string,
  ) {
    this.workspacePath = `/agents/${agentId}`;
  }

  /** A manager for `agentId`, its folder created if needed. */
  static async create(nx: NexusClient, agentId: string): Promise<AgentMemoryManager> {
    const manager = new AgentMemoryManager(nx, agentId);
    await nx.mkdir(manager.workspacePath, { parents: true });
    return manager;
  }

  sessionPath(sessionId: string): string {
    return `${this.workspacePath}/sessions/${sessionId}`;
  }

  /** Start new conversation session */
  async startSession(userId: string): Promise<Session> {
    const session = await this.nx.session.create({
      agentId: this.agentId,
      metadata: { user_id: userId, started_at: new Date().toISOString() },
    });
    // Create session memory directory
    await this.nx.mkdir(this.sessionPath(session.session_id), { parents: true, context: { sessionId: session.session_id } });
    return session;
  }

  /** Save conversation to session */
  async saveConversation(sessionId: string, messages: Message[]): Promise<void> {
    const conversation: Conversation = { messages, timestamp: new Date().toISOString() };
    await this.nx.write(`${this.sessionPath(sessionId)}/conversation.json`, JSON.stringify(conversation), {
      context: { sessionId },
    });
  }

  /** Create snapshot of session state */
  async snapshotSession(sessionId: string): Promise<string> {
    return this.nx.workspace.snapshot(this.sessionPath(sessionId), { name: `session-${sessionId}-checkpoint` });
  }

  /** Load session conversation history */
  async recallSession(sessionId: string): Promise<Conversation> {
    return JSON.parse(await this.nx.readText(`${this.sessionPath(sessionId)}/conversation.json`)) as Conversation;
  }
}

export interface AgentMemoryResult {
  session: Session;
  snapshotId: string;
  history: Conversation;
  sessionPath: string;
}

export async function main(options: ConnectOptions): Promise<AgentMemoryResult> {
  const nx = await connect(options);
  try {
    const agent = await AgentMemoryManager.create(nx, 'gpt-4-assistant');

    // Start session
    const session = await agent.startSession('user_123');

    // Save conversation
    const messages: Message[] = [
      { role: 'user', content: 'What is Nexus?' },
      { role: 'assistant', content: 'Nexus is an AI-native filesystem...' },
    ];
    await agent.saveConversation(session.session_id, messages);

    // Create checkpoint
    const snapshotId = await agent.snapshotSession(session.session_id);

    // Later: recall conversation
    const history = await agent.recallSession(session.session_id);
    console.log(`Loaded ${history.messages.length} messages (checkpoint ${snapshotId})`);
    return { session, snapshotId, history, sessionPath: agent.sessionPath(session.session_id) };
  } finally {
    await nx.close();
  }
}

runIfMain(import.meta.url, main);
