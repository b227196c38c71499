/**
 * @file A module resolution hook (`module.register`): the client's React adapter imports its
 * peer dependency `react` by name, but lives outside this folder, so Node would not find this
 * folder's `node_modules`. The hook resolves `react` (and `react/...`) from here, which also
 * guarantees the adapter and `react-dom` share one React.
 */

const HERE = new URL('../package.json', import.meta.url).href;

/**
 * @param {string} specifier
 * @param {{ parentURL?: string }} context
 * @param {(specifier: string, context: object) => Promise<unknown>} next
 */
export async function resolve(specifier, context, next) {
  if (specifier === 'react' || specifier.startsWith('react/')) {
    return next(specifier, { ...context, parentURL: HERE });
  }
  return next(specifier, context);
}
