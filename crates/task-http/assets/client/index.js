// @ts-check
/**
 * @file The tasklane JS client: everything except the React adapter (import that from
 * `./react.js`, so apps without React never load it). Types are in `index.d.ts`.
 */

export * from './api.js';
export {
  createBackgroundTaskService,
  fetchUserTasks,
  subscribeToUserTasks,
  subscribeToAllTasks,
} from './backgroundTaskService.js';
export { TaskFailedError, createTaskService, subscribeToTask, waitForCompletion } from './taskService.js';
export {
  ALL_POLL_INTERVAL_MS,
  DEFAULT_LIST_LIMIT,
  USER_POLL_INTERVAL_MS,
  isNewer,
  sortNewestFirst,
} from './taskList.js';
export { SseParser, openFetchEventStream } from './sse.js';
export { createLiveSocket, socketUrl, topicOf } from './ws.js';
