// Type declarations for the React adapter (`react.js`). Hand-written; checked against the JSDoc
// by the browser test suite (`tsc --checkJs`).

import type { ReactElement, ReactNode } from 'react';

import type {
  BackgroundTaskContextValue,
  TaskAction,
  TaskNotification,
  TaskState,
  TasklaneClient,
  UseTaskResult,
} from './index.js';

export type {
  BackgroundTaskContextValue,
  TaskAction,
  TaskNotification,
  TaskState,
  UseTaskResult,
} from './index.js';

export interface BackgroundTaskProviderProps {
  children?: ReactNode;
  /** Default: the `configure()`d client. */
  client?: TasklaneClient;
  /** Called once per new notification (show a toast here). */
  onNotification?: (notification: TaskNotification) => void;
  /** Most tasks kept. Default 100. */
  limit?: number;
}

/** Notifications kept at most; the oldest are dropped first. */
export declare const MAX_NOTIFICATIONS: number;
export declare const initialTaskState: TaskState;
/** The provider's pure state transitions. */
export declare function taskReducer(state: TaskState, action: TaskAction): TaskState;
/** Keeps the signed-in user's tasks (every task for a superuser) live for everything below it. */
export declare function BackgroundTaskProvider(props: BackgroundTaskProviderProps): ReactElement;
/** The provider's state and helpers; throws outside a provider. */
export declare function useBackgroundTasks(): BackgroundTaskContextValue;
/** One task, followed live over its own stream. */
export declare function useTask(taskId: string | null | undefined): UseTaskResult;
