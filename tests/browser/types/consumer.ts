// A TypeScript app using the client through its declarations: compiles only if index.d.ts and
// react.d.ts describe what the JS exports (types.test.js runs tsc over this and the JS).

import {
  ApiError,
  TaskFailedError,
  configure,
  createBackgroundTaskService,
  createClient,
  createTaskService,
  fetchUserTasks,
  startGeneration,
  subscribeToAllTasks,
  subscribeToTask,
  subscribeToUserTasks,
  waitForCompletion,
  type BulkResult,
  type GenerationResult,
  type Me,
  type Task,
  type TaskErrorDetails,
} from '../../../crates/task-http/assets/client/index.js';
import {
  BackgroundTaskProvider,
  initialTaskState,
  taskReducer,
  useBackgroundTasks,
  useTask,
} from '../../../crates/task-http/assets/client/react.js';

export async function example(): Promise<void> {
  const client = createClient({ baseUrl: 'http://127.0.0.1:8080', token: 'tl_x', EventSource: null });
  configure({ baseUrl: client.baseUrl });
  const me: Me = await client.me();
  const started = await startGeneration({ amount: 10, category: 'Historia', ageGroup: 'adults', difficulty: 'medium', provider: 'offline' });
  const cleanup: () => void = subscribeToTask(
    started.taskId,
    (task: Task) => task.progress,
    (task: Task) => task.result,
    (message: string, details: TaskErrorDetails) => `${message} ${details.type}`,
  );
  cleanup();
  try {
    const done = await waitForCompletion(started.taskId, { onUpdate: (task) => task.description });
    const result = done.result as GenerationResult;
    const correct: number = result.questions[0].correctIndex;
    void correct;
  } catch (error) {
    if (error instanceof TaskFailedError) {
      const status: Task['status'] | undefined = error.taskStatus;
      void status;
    } else if (error instanceof ApiError) {
      const code: number = error.status;
      void code;
    }
  }
  const tasks: Task[] = await fetchUserTasks(me.email);
  const outcome: BulkResult = await client.bulk('cancel', tasks.map((task) => task.id));
  void outcome.results.filter((result) => result.ok);
  const stopUser = subscribeToUserTasks(me.email, (list: Task[]) => list.length, { onModeChange: (mode) => mode });
  const stopAll = subscribeToAllTasks((list) => list.length, { pollIntervalMs: 1000 });
  stopUser();
  stopAll();
  createBackgroundTaskService(client).subscribeToAllTasks(() => {});
  await createTaskService(client).waitForCompletion('task_1_x');
  const page = await client.queryTasks({ status: 'failed,cancelled', limit: 10 });
  void page.nextCursor;
}

export function reactExample(): unknown {
  const state = taskReducer(initialTaskState, { type: 'mode', mode: 'live' });
  void state.notifications.map((note) => note.message);
  void BackgroundTaskProvider({ onNotification: (note) => note.kind, limit: 50 });
  const { tasks, isSuperuser } = useBackgroundTasks();
  const { task, error, done } = useTask(tasks[0]?.id);
  return [isSuperuser, task?.progress, error, done];
}
