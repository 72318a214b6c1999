import Engine
import Foundation
import Hummingbird
import Logging
import Relay

/// `relay serve`: an OpenAI-compatible HTTP server over the relay modes.
public final class RelayServer: @unchecked Sendable {
    public struct Configuration: Sendable {
        public var host = "127.0.0.1"
        public var port = 8080
        /// When set, `/v1/*` requires `Authorization: Bearer KEY`.
        public var apiKey: String?
        /// Requests that may wait for a slot; more are refused with HTTP 429.
        public var queueLimit = 16
        public init() {}
    }

    let configuration: Configuration
    let served: ServedModels
    let metrics = Metrics()
    let pool: SlotPool

    /// `pairs` holds one pair of sessions per slot (`-np`).
    public init(configuration: Configuration, served: ServedModels, pairs: [ModePair], settings: Modes.Settings) {
        self.configuration = configuration
        self.served = served
        pool = SlotPool(pairs: pairs, queueLimit: configuration.queueLimit, settings: settings, tokenizer: served.tokenizer,
                        contextSize: served.contextSize, metrics: metrics)
    }

    public func buildRouter() -> Router<BasicRequestContext> {
        let controller = CompletionsController(served: served, pool: pool, metrics: metrics, apiKey: configuration.apiKey)
        let router = Router()
        router.post("/v1/chat/completions") { request, _ in await controller.complete(request, chat: true) }
        router.post("/v1/completions") { request, _ in await controller.complete(request, chat: false) }
        router.get("/v1/models") { request, _ in
            do { return try controller.models(request) } catch { return controller.errorResponse(CompletionsController.apiError(error)) }
        }
        router.get("/health") { _, _ in
            controller.json(["status": "ok", "slots": self.pool.slots.count, "slots_busy": self.pool.busySlots, "queue_depth": self.pool.queueDepth])
        }
        router.get("/metrics") { _, _ in
            let text = self.metrics.render(queueDepth: self.pool.queueDepth, busySlots: self.pool.busySlots, slots: self.pool.slots.count)
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: .init(byteBuffer: ByteBuffer(string: text)))
        }
        router.get("/") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"],
                     body: .init(byteBuffer: ByteBuffer(string: Playground.html(models: self.served.ids, defaultMode: self.served.defaultMode,
                                                                                  needsKey: self.configuration.apiKey != nil))))
        }
        return router
    }

    /// Serves until SIGINT or SIGTERM; then stops accepting connections, lets open ones finish,
    /// cancels what is still queued or running, and returns.
    public func run(onReady: @escaping @Sendable (Int) -> Void = { _ in }) async throws {
        var logger = Logger(label: "relay")
        logger.logLevel = .warning
        let app = Application(
            router: buildRouter(),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "relay"),
            onServerRunning: { channel in onReady(channel.localAddress?.port ?? 0) },
            logger: logger)
        defer { pool.shutdown() }
        try await app.runService()
    }
}
