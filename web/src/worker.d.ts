// genesys-notify-web/worker is the SharedWorker script of createSharedClient: it is loaded as
// a worker (`new SharedWorker(url, { type: 'module' })`), not imported, and exports nothing.
export {};
