/**
 * The one place for what Node 20 lacks and Talken's dependencies expect.
 *
 * Node 20.19 is the oldest runtime Talken supports. Each shim here names the Node version that
 * made it unnecessary, so it can be deleted when support for older versions ends.
 * Import this module first, before anything that depends on the shimmed features.
 */

interface WithResolvers<T> {
  promise: Promise<T>
  resolve: (value: T | PromiseLike<T>) => void
  reject: (reason?: unknown) => void
}

type PromiseCtorWithResolvers = PromiseConstructor & { withResolvers?: <T>() => WithResolvers<T> }

/** `Promise.withResolvers` (native from Node 22): used by libp2p 3.x. */
function installPromiseWithResolvers(): void {
  const P = Promise as PromiseCtorWithResolvers
  if (typeof P.withResolvers === 'function') return
  Object.defineProperty(Promise, 'withResolvers', {
    configurable: true,
    writable: true,
    value<T>(): WithResolvers<T> {
      let resolve!: WithResolvers<T>['resolve']
      let reject!: WithResolvers<T>['reject']
      const promise = new Promise<T>((res, rej) => {
        resolve = res
        reject = rej
      })
      return { promise, resolve, reject }
    },
  })
}

installPromiseWithResolvers()
