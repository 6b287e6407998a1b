// Nothing for genesys-notify-web. The root is set only because this app sits inside a
// repository with lock files of its own above it.
export default { turbopack: { root: import.meta.dirname } };
