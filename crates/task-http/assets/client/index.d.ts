// Type declarations for the tasklane JS client (`index.js` and the modules it re-exports).
// Hand-written; kept in step with the JSDoc in the .js files, and checked against them by the
// browser test suite (`tsc --checkJs`).

/** Where a task is in its life. */
export type TaskStatus = 'waiting' | 'pending' | 'processing' | 'completed' | 'failed' | 'cancelled';

/** One background task as the API serves it. Timestamps are Unix milliseconds. */
export interface Task {
  id: string;
  user_id: string;
  /** `generation`, `validation`, `emoji-regeneration`, or another registered type. */
  task_type: string;
  status: TaskStatus;
  label: string | null;
  description: string | null;
  /** `0 <= progress <= total`. */
  progress: number;
  /** The progress value that means done; usually 100. */
  total: number;
  /** The handler's result once completed (a JSON value, not a string). */
  result: unknown;
  /** Why it failed or was cancelled. */
  error: string | null;
  params: unknown;
  attempt: number;
  max_attempts: number;
  run_at: number;
  lease_owner: string | null;
  lease_expires_at: number | null;
  cancel_requested: boolean;
  /** Increases by one with every committed change; the SSE event id. */
  version: number;
  created_at: number;
  updated_at: number;
  started_at: number | null;
  completed_at: number | null;
  /** How many parent tasks a `waiting` task still waits for; 0 otherwise. */
  waiting_for: number;
  /** The workflow the task was created in, if any. */
  workflow_id: string | null;
  /** Which due tasks workers take first. */
  priority: 'low' | 'normal' | 'high';
}

/** One generated quiz question, as a generation task's result lists it (the quiz crate's JSON). */
export interface Question {
  id: string;
  userId?: string;
  text: string;
  /** Exactly four distinct options. */
  options: string[];
  /** Which option is right, 0..=3. */
  correctIndex: number;
  /** The same index under the snake_case name some embedders use. */
  correct_index?: number;
  explanation: string;
  emoji: string;
  category?: string;
  ageGroup?: 'children' | 'youth' | 'adults';
  difficulty?: 'easy' | 'medium' | 'hard';
  language?: string;
  validationStatus?: string;
  validationNotes?: string | null;
  provider?: string;
  model?: string;
  taskId?: string | null;
  createdAt?: number;
  updatedAt?: number;
  [field: string]: unknown;
}

/** The result of a completed `generation` task. */
export interface GenerationResult {
  success: true;
  questionsGenerated: number;
  questions: Question[];
  provider?: string;
  model?: string;
  [field: string]: unknown;
}

/** Parameters of `POST /api/generateAIQuestions`. */
export interface GenerationParams {
  /** 1..=50. */
  amount: number;
  category: string;
  ageGroup: 'children' | 'youth' | 'adults';
  difficulty: 'easy' | 'medium' | 'hard';
  /** `openai`, `anthropic`, `gemini`, `openai-compatible` or `offline`. */
  provider: string;
  language?: string;
  /** Steps to run after the generation, each on the questions of the step before. */
  then?: ('validation' | 'emoji-regeneration')[];
}

/** Parameters of `POST /api/validateQuestions` and `POST /api/regenerateEmojis`. */
export interface QuestionTaskParams {
  questionIds?: string[];
  category?: string;
  provider: string;
  [field: string]: unknown;
}

/** A generic task for `POST /api/tasks`. */
export interface NewTaskSpec {
  task_type: string;
  params?: unknown;
  label?: string;
  description?: string;
  run_at?: number;
  max_attempts?: number;
}

/** The answer of the task-starting endpoints. */
export interface StartedTask {
  success: true;
  taskId: string;
  [field: string]: unknown;
}

/** Filters of `GET /api/tasks`. */
export interface TaskQuery {
  /** One status or several, comma-separated. */
  status?: string;
  type?: string;
  userId?: string;
  /** Text search. */
  q?: string;
  limit?: number;
  /** `nextCursor` of the previous page. */
  cursor?: string;
}

/** One page of `GET /api/tasks`. */
export interface TaskPage {
  tasks: Task[];
  nextCursor: string | null;
}

/** `GET /api/tasks/counts`: every task of the database, counted on the server. */
export interface TaskCounts {
  total: number;
  byStatus: Record<TaskStatus, number>;
  byType: Record<string, number>;
  /** When the server counted (Unix ms). */
  countedAt: number;
}

/** An edge of a workflow: `child` waits for `parent`. */
export interface WorkflowEdge {
  parent: string;
  child: string;
  run_on_failure?: boolean;
}

/** `GET /api/workflows/{id}`. */
export interface WorkflowView {
  id: string;
  userId: string;
  createdAt: number;
  /** In creation order; `task` is `null` once the cleaner deleted it. */
  nodes: { key: string; task: Task | null }[];
  edges: WorkflowEdge[];
}

export type BulkAction = 'cancel' | 'retry' | 'delete';

/** One id's outcome in a bulk action: the task after the change, or the error a single request would get. */
export interface BulkOutcome {
  taskId: string;
  ok: boolean;
  task?: Task;
  status?: number;
  error?: string;
}

/** The answer of `POST /api/tasks/bulk`: one outcome per distinct id, in request order. */
export interface BulkResult {
  action: BulkAction;
  results: BulkOutcome[];
}

/** The signed-in user (`GET /api/me`). */
export interface Me {
  email: string;
  role: 'user' | 'superuser';
  /** How this request authenticated (`session`, `bearer`, ...). */
  auth: string;
  /** The limits that apply to the caller (their own, else the server's defaults). */
  limits?: UserLimits;
}

/** A user's limits as `GET /api/me` shows them. */
export interface UserLimits {
  /** Sustained task creations, like `600/min`; `null`: no rate limit. */
  rate: string | null;
  /** Creations allowed at once above the rate. */
  burst: number;
  /** Unfinished tasks allowed. */
  max_queued: number;
  /** The user's own cap on running tasks; `null`: the server's. */
  max_running: number | null;
}

/** How a client reaches the server. */
export interface ClientOptions {
  /** The server's origin, e.g. `http://127.0.0.1:8080`. Default: the page's own origin. */
  baseUrl?: string;
  /** An API token sent as `Authorization: Bearer`; without it the browser's session cookie is used. */
  token?: string | null;
  /** `fetch` to use. Default: the global one. */
  fetch?: typeof fetch;
  /**
   * An `EventSource` constructor for the live streams, or `null` to use the built-in fetch-based
   * reader. Default: the global `EventSource` when there is no token (it cannot send one),
   * otherwise the fetch reader.
   */
  EventSource?: (new (url: string, init?: { withCredentials?: boolean }) => EventSourceLike) | null;
  /** Cookie mode for requests. Default: `same-origin`. */
  credentials?: RequestCredentials;
  /**
   * How live updates travel. `'sse'` (the default): one SSE stream per subscription.
   * `'websocket'`: every subscription over one WebSocket (`/api/ws`), falling back to SSE by
   * itself when the upgrade fails. Needs cookie auth: with a `token`, or where there is no
   * `WebSocket`, SSE is used.
   */
  transport?: 'sse' | 'websocket';
  /** A `WebSocket` constructor for `transport: 'websocket'`. Default: the global one. */
  WebSocket?: (new (url: string) => WebSocketLike) | null;
}

/** The part of the `WebSocket` interface the client uses. */
export interface WebSocketLike {
  readonly readyState: number;
  onopen: ((event: any) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: any) => void) | null;
  send(data: string): void;
  close(): void;
}

/** The part of the `EventSource` interface the client uses. */
export interface EventSourceLike {
  readonly readyState: number;
  onopen: ((event: any) => void) | null;
  onmessage: ((event: { data: string; lastEventId?: string }) => void) | null;
  onerror: ((event: any) => void) | null;
  close(): void;
}

/** One message read from an event stream. */
export interface SseMessage {
  data: string;
  event: string;
  id: string;
}

/** A stream problem. `fatal`: the server refused the stream (no retry); otherwise it reconnects. */
export interface StreamError {
  fatal: boolean;
  status?: number;
  message: string;
}

export interface StreamHandlers {
  onOpen?: () => void;
  onMessage?: (message: SseMessage) => void;
  onError?: (error: StreamError) => void;
}

export interface StreamHandle {
  close(): void;
}

/** A client bound to one server and identity. Every method rejects with {@link ApiError} on a non-2xx answer. */
export interface TasklaneClient {
  readonly baseUrl: string;
  url(path: string): string;
  me(): Promise<Me>;
  /** Starts a browser session (HttpOnly cookie) from an API token. */
  login(token: string): Promise<Me>;
  logout(): Promise<{ success: boolean }>;
  startGeneration(params: GenerationParams): Promise<StartedTask>;
  startValidation(params: QuestionTaskParams): Promise<StartedTask>;
  startEmojiRegeneration(params: QuestionTaskParams): Promise<StartedTask>;
  /** `POST /api/tasks`: a task of any registered type; answers with the created task. */
  createTask(spec: NewTaskSpec): Promise<Task>;
  getTask(taskId: string): Promise<Task>;
  /** `GET /api/getBackgroundTasks`: newest first; a superuser may name any `userId`. */
  listTasks(query?: { userId?: string; limit?: number }): Promise<Task[]>;
  /** `GET /api/tasks`: one page, filtered on the server. */
  queryTasks(query?: TaskQuery): Promise<TaskPage>;
  /** `GET /api/tasks/counts` (superusers): every task by status and by type. */
  taskCounts(): Promise<TaskCounts>;
  /** `GET /api/workflows/{id}`: the nodes with their tasks, and the edges. */
  getWorkflow(workflowId: string): Promise<WorkflowView>;
  /** A pending task is cancelled at once; a running one is asked to stop. Answers with the task. */
  cancelTask(taskId: string): Promise<Task>;
  /** Puts a failed or cancelled task back in the queue. Answers with the task. */
  retryTask(taskId: string): Promise<Task>;
  bulk(action: BulkAction, taskIds: string[]): Promise<BulkResult>;
  listQuestions(query?: Record<string, string | number | undefined>): Promise<unknown>;
  /**
   * Opens an SSE endpoint with the client's transport and identity (over the shared WebSocket
   * when `transport: 'websocket'` is in use).
   */
  openStream(path: string, handlers: StreamHandlers): StreamHandle;
  /** The transport live updates use now: `'sse'`, or `'websocket'` until an upgrade failed. */
  transport(): 'sse' | 'websocket';
}

export declare class ApiError extends Error {
  constructor(message: string, status: number);
  /** The HTTP status code. */
  readonly status: number;
}

export declare function createClient(options?: ClientOptions): TasklaneClient;
/** Replaces the client the module-level functions use. */
export declare function configure(options: ClientOptions): TasklaneClient;
export declare function getClient(): TasklaneClient;

export declare const me: TasklaneClient['me'];
export declare const login: TasklaneClient['login'];
export declare const logout: TasklaneClient['logout'];
export declare const startGeneration: TasklaneClient['startGeneration'];
export declare const startValidation: TasklaneClient['startValidation'];
export declare const startEmojiRegeneration: TasklaneClient['startEmojiRegeneration'];
export declare const createTask: TasklaneClient['createTask'];
export declare const getTask: TasklaneClient['getTask'];
export declare const listTasks: TasklaneClient['listTasks'];
export declare const queryTasks: TasklaneClient['queryTasks'];
export declare const taskCounts: TasklaneClient['taskCounts'];
export declare const getWorkflow: TasklaneClient['getWorkflow'];
export declare const cancelTask: TasklaneClient['cancelTask'];
export declare const retryTask: TasklaneClient['retryTask'];
export declare const bulk: TasklaneClient['bulk'];
export declare const listQuestions: TasklaneClient['listQuestions'];

/** Why a followed task ended without completing. */
export interface TaskErrorDetails {
  /** `error`: failed or cancelled; `timeout`: the monitoring limit; `unavailable`: the stream was refused. */
  type: 'error' | 'timeout' | 'unavailable';
  /** The task's last known state (its final one for `error`). */
  task: Task | null;
  /** The HTTP status when the stream was refused. */
  status?: number;
}

/** How a list is kept live. */
export type ListMode = 'idle' | 'connecting' | 'live' | 'polling';

export interface ListSubscriptionOptions {
  /** Most tasks kept and passed to the callback. Default 100. */
  limit?: number;
  /** Overrides the polling interval (5 s for a user, 3 s for all tasks). */
  pollIntervalMs?: number;
  /** `false` skips the live stream and polls from the start. */
  stream?: boolean;
  /** A snapshot could not be read. */
  onError?: (error: Error) => void;
  /** The list switched between live streaming and polling. */
  onModeChange?: (mode: ListMode) => void;
}

export interface BackgroundTaskService {
  fetchUserTasks(userId?: string | null, options?: { limit?: number }): Promise<Task[]>;
  subscribeToTask(
    taskId: string,
    onUpdate?: ((task: Task) => void) | null,
    onComplete?: ((task: Task) => void) | null,
    onError?: ((message: string, details: TaskErrorDetails) => void) | null,
    /** Each partial output (a generated question) with its index, in order. */
    onPartial?: ((item: unknown, index: number) => void) | null,
  ): () => void;
  subscribeToUserTasks(
    userId: string | null | undefined,
    callback: (tasks: Task[]) => void,
    options?: ListSubscriptionOptions,
  ): () => void;
  subscribeToAllTasks(callback: (tasks: Task[]) => void, options?: ListSubscriptionOptions): () => void;
}

export declare function createBackgroundTaskService(client?: TasklaneClient): BackgroundTaskService;
export declare const fetchUserTasks: BackgroundTaskService['fetchUserTasks'];
export declare const subscribeToUserTasks: BackgroundTaskService['subscribeToUserTasks'];
export declare const subscribeToAllTasks: BackgroundTaskService['subscribeToAllTasks'];

export interface WaitOptions {
  /** Called with every update while waiting. */
  onUpdate?: (task: Task) => void;
  /** Stops waiting (the promise rejects with the signal's reason). */
  signal?: AbortSignal;
}

export interface TaskService {
  subscribeToTask: BackgroundTaskService['subscribeToTask'];
  /** Resolves with the completed task; rejects with {@link TaskFailedError}. */
  waitForCompletion(taskId: string, options?: WaitOptions): Promise<Task>;
}

export declare class TaskFailedError extends Error {
  constructor(taskId: string, message: string, details: TaskErrorDetails);
  readonly taskId: string;
  readonly type: TaskErrorDetails['type'];
  readonly task: Task | null;
  readonly taskStatus: TaskStatus | undefined;
  readonly status: number | undefined;
}

export declare function createTaskService(client?: TasklaneClient): TaskService;
export declare const subscribeToTask: TaskService['subscribeToTask'];
export declare const waitForCompletion: TaskService['waitForCompletion'];

export declare const USER_POLL_INTERVAL_MS: number;
export declare const ALL_POLL_INTERVAL_MS: number;
export declare const DEFAULT_LIST_LIMIT: number;
/** Whether `a` is a later state of the same task than `b`. */
export declare function isNewer(a: Task, b: Task): boolean;
export declare function sortNewestFirst(tasks: Iterable<Task>): Task[];

/** Incremental `text/event-stream` parser. */
export declare class SseParser {
  constructor(onMessage: (message: SseMessage) => void, onRetry?: (ms: number) => void);
  lastEventId: string;
  push(chunk: string): void;
}
export declare function openFetchEventStream(
  url: string,
  options: StreamHandlers & { fetch: typeof fetch; headers?: Record<string, string>; credentials?: RequestCredentials },
): StreamHandle;

/** The `/api/ws` subscription an SSE path stands for, or `null` for one the socket cannot carry. */
export declare function topicOf(
  path: string,
): { topic: 'task'; taskId: string } | { topic: 'tasks'; userId?: string } | null;
/** The `ws:`/`wss:` address of `/api/ws` for an API at `baseUrl` (`''`: the page's origin). */
export declare function socketUrl(baseUrl: string): string | null;
/** Every stream opened through it over one WebSocket, moving to `fallback` (SSE) when the upgrade fails. */
export declare function createLiveSocket(options: {
  url: string;
  WebSocket: new (url: string) => WebSocketLike;
  fallback: (path: string, handlers: StreamHandlers) => StreamHandle;
}): { open(path: string, handlers: StreamHandlers): StreamHandle; transport(): 'sse' | 'websocket' };

// ---- React adapter state (the components and hooks are declared in react.d.ts) ----

/** A finished task the provider saw running. */
export interface TaskNotification {
  /** Unique per task state: `<taskId>:<version>`. */
  id: string;
  taskId: string;
  kind: 'completed' | 'failed' | 'cancelled';
  message: string;
  task: Task;
}

export interface TaskState {
  user: Me | null;
  tasks: Task[];
  mode: ListMode;
  error: string | null;
  notifications: TaskNotification[];
}

export type TaskAction =
  | { type: 'session'; user: Me }
  | { type: 'tasks'; tasks: Task[] }
  | { type: 'mode'; mode: ListMode }
  | { type: 'error'; error: string }
  | { type: 'dismiss'; id: string };

export interface BackgroundTaskContextValue extends TaskState {
  isSuperuser: boolean;
  client: TasklaneClient;
  dismissNotification(id: string): void;
  getTask(taskId: string): Task | undefined;
}

export interface UseTaskResult {
  task: Task | null;
  /** The task's error message once it failed, was cancelled or timed out. */
  error: string | null;
  /** Whether the task's stream has ended. */
  done: boolean;
  /** The partial outputs received so far, by index (a generation's questions as they arrive). */
  items: unknown[];
}
