import { h } from 'vue';

/**
 * The title of a column whose cells show what they are (buttons, a tag): a screen reader
 * announces it with each cell; on screen the header stays empty.
 */
export function unseenTitle(text: string): () => ReturnType<typeof h> {
  return () => h('span', { class: 'visually-hidden' }, text);
}
