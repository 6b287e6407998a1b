// A server component: it imports the package (as a page that shares a module with the client
// does) and renders the client component that runs the session.
import { createClient } from 'genesys-notify-web';
import Live from './live';

export default function Page() {
  return (
    <main>
      <p>server render: createClient is a {typeof createClient}</p>
      <Live />
    </main>
  );
}
