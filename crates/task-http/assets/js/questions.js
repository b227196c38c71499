// @ts-check
/**
 * @file Renders a generation task's result: each question with its emoji, the four options with
 * the correct one marked, and the explanation. Every string goes in as text.
 */

import { h } from './dom.js';

/**
 * @typedef {import('../client/index.js').Question} Question
 */

/**
 * The questions in a task result, or `null` when the result is not a question list.
 * @param {unknown} result
 * @returns {Question[] | null}
 */
export function questionsOf(result) {
  if (!result || typeof result !== 'object') return null;
  const questions = /** @type {{ questions?: unknown }} */ (result).questions;
  return Array.isArray(questions) ? questions : null;
}

/**
 * The index of the correct option (the API names it `correctIndex`).
 * @param {Question} question
 * @returns {number}
 */
function correctIndexOf(question) {
  const value = question.correctIndex ?? question.correct_index;
  return typeof value === 'number' ? value : -1;
}

/**
 * One `<li>` per question, for an `<ol class="question-list">`.
 * @param {Question[]} questions
 * @returns {HTMLElement[]}
 */
export function questionItems(questions) {
  return questions.map((question, index) => {
    const correct = correctIndexOf(question);
    const options = Array.isArray(question.options) ? question.options : [];
    const letters = ['A', 'B', 'C', 'D', 'E', 'F'];
    return h('li', { class: 'question', attrs: { 'aria-label': `Question ${index + 1}` } }, [
      h('p', { class: 'question-text' }, [
        question.emoji ? h('span', { class: 'emoji', text: String(question.emoji), attrs: { 'aria-hidden': 'true' } }) : null,
        h('span', { class: 'text', text: String(question.text ?? '') }),
      ]),
      h(
        'ul',
        { class: 'options', attrs: { 'aria-label': 'Options' } },
        options.map((option, optionIndex) =>
          h('li', { class: optionIndex === correct ? 'option correct' : 'option' }, [
            h('span', { class: 'letter', text: letters[optionIndex] || String(optionIndex + 1), attrs: { 'aria-hidden': 'true' } }),
            h('span', { class: 'option-text', text: String(option) }),
            optionIndex === correct ? h('span', { class: 'correct-mark', text: '✓ correct' }) : null,
          ]),
        ),
      ),
      question.explanation ? h('p', { class: 'explanation', text: String(question.explanation) }) : null,
    ]);
  });
}

/**
 * A heading for a completed generation: how many questions, and which provider made them.
 * @param {unknown} result
 * @param {number} count
 */
export function resultSummary(result, count) {
  const info = /** @type {{ questionsGenerated?: unknown, provider?: unknown, model?: unknown }} */ (result || {});
  const generated = typeof info.questionsGenerated === 'number' ? info.questionsGenerated : count;
  const model = typeof info.model === 'string' && info.model !== info.provider ? ` (${info.model})` : '';
  const by = typeof info.provider === 'string' ? ` by ${info.provider}${model}` : '';
  return `${generated} question${generated === 1 ? '' : 's'} generated${by}`;
}
