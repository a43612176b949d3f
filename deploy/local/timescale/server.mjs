// Local TimescaleDB for tests: PGlite (PostgreSQL 17.5 compiled to WASM) with the
// real timescaledb extension (2.23.0-dev), served over the Postgres wire protocol
// by @electric-sql/pglite-socket.
//
//   node server.mjs PORT        listens on 127.0.0.1:PORT, in-memory database
//
// Prints "ready on 127.0.0.1:PORT" on stdout once listening; exits on SIGTERM/SIGINT.
// Any user, database name and password is accepted, but a password must be given
// (PGlite asks for an md5 password; a client without one fails with "no password
// supplied"). The session is always user postgres in database template1,
// search_path public, TimeZone GMT. No TLS: an SSLRequest is answered 'N' here,
// so sslmode=prefer/disable work and sslmode=require fails.
//
// Connection behaviour (pglite-socket 0.0.20, read from its source and checked
// with psql):
// - ONE client connection at a time. There is a single PostgreSQL backend; the
//   connected client holds an exclusive lock on it for as long as its socket is
//   open. Further connections are accepted at TCP level but queued: they get no
//   reply (not even to the startup message) until the active client disconnects,
//   and are closed after 60 s in the queue. So a connection pool that keeps more
//   than one connection open stalls, and so does a second client (a test
//   harness) while the application holds an idle pooled connection. Use a pool
//   of at most one connection, or connect per use and disconnect.
// - A disconnect (clean or not) leaves the server usable: the next queued client
//   is attached. The backend's session state would carry over to the next
//   client (named prepared statements, SET values, temp tables, even an open
//   transaction of a client that went away); this server resets it on every new
//   connection (ROLLBACK; DISCARD ALL; then PGlite's own session settings again),
//   so each client starts clean, as with a real server. Clients need not run
//   DEALLOCATE ALL themselves.
// - pglite-socket hands each TCP chunk to PGlite as it arrives; a protocol
//   message split over two chunks (anything larger than ~64 KiB, e.g. a big
//   batch insert) aborted the WASM module and killed the process. Messages are
//   reassembled here before PGlite sees them.
// - Background workers do not exist: TimescaleDB policies (continuous-aggregate
//   refresh, compression, retention) are registered as jobs but never run; call
//   refresh_continuous_aggregate / compress_chunk / drop_chunks explicitly.
import { PGlite } from '@electric-sql/pglite'
import { timescaledb } from '@electric-sql/pglite/timescaledb'
import { PGLiteSocketServer } from '@electric-sql/pglite-socket'

const port = Number.parseInt(process.argv[2] ?? '', 10)
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error('usage: node server.mjs PORT')
  process.exit(2)
}
const host = '127.0.0.1'

const db = await PGlite.create({ extensions: { timescaledb } })
// This build starts with client_min_messages=debug3 (every statement would send
// DEBUG notices to the client). PGlite itself sets search_path=public for the
// session over a command-line pg_catalog, which DISCARD ALL would bring back
// (tables would then land in pg_catalog): the session-level settings are
// captured here and set again after each reset.
await db.exec('SET client_min_messages TO notice')
const { rows: sessionSettings } = await db.query(
  "SELECT name, setting FROM pg_settings WHERE source = 'session' ORDER BY name",
)
const SESSION_SETUP = sessionSettings.length
  ? [
      'SELECT ' +
        sessionSettings
          .map((r) => `set_config(${sqlLiteral(r.name)}, ${sqlLiteral(r.setting)}, false)`)
          .join(', '),
    ]
  : []

function sqlLiteral(v) {
  return `'${String(v).replaceAll("'", "''")}'`
}

const SSL_REQUEST = 80877103
const GSSENC_REQUEST = 80877104
const CANCEL_REQUEST = 80877102

// A simple-protocol Query message.
function queryMessage(sql) {
  const text = Buffer.from(sql + '\0', 'utf8')
  const msg = Buffer.alloc(5 + text.length)
  msg.write('Q', 0, 'latin1')
  msg.writeInt32BE(4 + text.length, 1)
  text.copy(msg, 5)
  return msg
}

// Runs while the new client's handler holds PGlite's exclusive lock, just before
// its startup message is processed; synchronous, so nothing can interleave.
function resetSession() {
  for (const sql of ['ROLLBACK', 'DISCARD ALL', ...SESSION_SETUP]) {
    db.execProtocolRawSync(queryMessage(sql))
  }
}

// Makes the socket emit 'data' only in whole protocol messages, answers
// SSL/GSS encryption requests with 'N', and resets the session on startup.
function frameSocket(socket) {
  const emit = socket.emit.bind(socket)
  let pending = Buffer.alloc(0)
  let startup = true // before the StartupMessage: messages have no type byte
  socket.emit = (event, ...args) => {
    if (event !== 'data') return emit(event, ...args)
    pending = pending.length ? Buffer.concat([pending, args[0]]) : args[0]
    const out = []
    let off = 0
    for (;;) {
      const rest = pending.length - off
      if (startup) {
        if (rest < 8) break
        const len = pending.readInt32BE(off)
        if (rest < len) break
        const code = pending.readInt32BE(off + 4)
        const msg = pending.subarray(off, off + len)
        off += len
        if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
          socket.write('N')
        } else if (code === CANCEL_REQUEST) {
          socket.destroy() // PGlite cannot cancel a running query
          return true
        } else {
          startup = false
          resetSession()
          out.push(msg)
        }
      } else {
        if (rest < 5) break
        const len = 1 + pending.readInt32BE(off + 1)
        if (rest < len) break
        out.push(pending.subarray(off, off + len))
        off += len
      }
    }
    pending = pending.subarray(off)
    if (out.length === 0) return true
    return emit('data', out.length === 1 ? out[0] : Buffer.concat(out))
  }
}

class FramedSocketServer extends PGLiteSocketServer {
  // Overrides the (TypeScript-private) per-connection entry point.
  async handleConnection(socket) {
    frameSocket(socket)
    return super.handleConnection(socket)
  }
}

const server = new FramedSocketServer({ db, port, host })
server.addEventListener('error', (e) => {
  console.error('pglite-socket error:', e.detail?.message ?? e.detail)
})
await server.start()
console.log(`ready on ${host}:${port}`)

let stopping = false
async function shutdown(signal) {
  if (stopping) return
  stopping = true
  console.error(`${signal}: stopping`)
  // Do not wait forever on a client that keeps its socket open.
  setTimeout(() => process.exit(0), 3000).unref()
  try {
    await server.stop()
    await db.close()
  } catch (err) {
    console.error('shutdown:', err?.message ?? err)
  }
  process.exit(0)
}
process.on('SIGTERM', () => shutdown('SIGTERM'))
process.on('SIGINT', () => shutdown('SIGINT'))
