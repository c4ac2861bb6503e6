// Preloaded (node --import) into the cache-tests origin server by bench/cache_tests.py:
// the vendored server calls server.listen(port), which binds every interface; this makes a
// listen() given only a port bind 127.0.0.1 instead, without editing the vendored file.
import net from 'node:net'

const listen = net.Server.prototype.listen
net.Server.prototype.listen = function (...args) {
  if (args.length >= 1 && (typeof args[0] === 'number' || typeof args[0] === 'string') &&
      (args.length === 1 || typeof args[1] === 'function')) {
    args.splice(1, 0, '127.0.0.1')
  }
  return listen.apply(this, args)
}
