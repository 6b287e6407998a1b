export const metadata = { title: 'genesys-notify-web consumer (Next.js)' };

export default function RootLayout({ children }) {
  return (
    <html lang="en">
      <body>{children}</body>
    </html>
  );
}
