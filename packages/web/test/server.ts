/**
 * The web app's unit tests talk to a real dfs server (the same process the e2e suite runs, from
 * the sources), never to a mock of it. Its origin is fixed per test run so the happy-dom window
 * can be that origin: the app's API client uses relative URLs and the session cookie, exactly as
 * in a browser.
 */
export const WEB_TEST_PORT = Number(process.env.DFS_WEB_TEST_PORT ?? 20000 + (process.pid % 20000));
export const WEB_TEST_ORIGIN = `http://127.0.0.1:${WEB_TEST_PORT}`;
