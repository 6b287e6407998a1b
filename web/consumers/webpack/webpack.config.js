// What any webpack 5 app has (an entry, a page); nothing for genesys-notify-web: webpack finds
// its SharedWorker and wasm file through their `new URL(…, import.meta.url)` on its own.
const HtmlWebpackPlugin = require('html-webpack-plugin');

module.exports = {
  entry: './src/app.js',
  output: { path: `${__dirname}/dist`, clean: true },
  plugins: [new HtmlWebpackPlugin({ template: './index.html' })],
};
