// What a bundler's asset import of the wasm file gives: its URL (Vite's `?url`, webpack's
// asset/resource); a bundler's own client types declare the same.
declare module '*.wasm' {
  const url: string;
  export default url;
}
