/** Messages of one feature, kept apart so features land without touching each other's text. */
const en = {};

const zhCN: typeof en = {};

export default { en, 'zh-CN': zhCN };
