import Engine
import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
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
        /// Larger request bodies are refused with HTTP 413.
        public var maxBodyBytes = 16 << 20
        /// Timeouts and the cap on open connections.
        public var connections = ConnectionLimits()
        /// Origins whose pages may call the API from a browser (CORS); "*" allows any.
        public var allowedOrigins: [String] = []
        public init() {}

        /// An empty key would switch authentication on with a key no client can send.
        public func validate() throws {
            if let apiKey, apiKey.trimmingCharacters(in: .whitespaces).isEmpty {
                throw ConfigurationError("the API key is empty (--api-key or RELAY_API_KEY): set a key, or unset it to serve without one")
            }
            // Clients send it in a header, whose parser drops spaces around a value.
            if let apiKey, !apiKey.unicodeScalars.allSatisfy({ (0x20...0x7E).contains($0.value) }) || apiKey != apiKey.trimmingCharacters(in: .whitespaces) {
                throw ConfigurationError("the API key must be printable ASCII, with no spaces around it: clients send it in an HTTP header")
            }
        }
    }

    public struct ConfigurationError: Error, CustomStringConvertible {
        public var description: String
        init(_ description: String) { self.description = description }
    }

    let configuration: Configuration
    let served: ServedModels
    let metrics = Metrics()
    let pool: SlotPool
    let connections: OpenConnections

    /// `pairs` holds one pair of sessions per slot (`-np`).
    public init(configuration: Configuration, served: ServedModels, pairs: [SessionPair], settings: Mode.Settings) {
        self.configuration = configuration
        self.served = served
        connections = OpenConnections(limit: configuration.connections.maxConnections, metrics: metrics)
        pool = SlotPool(pairs: pairs, queueLimit: configuration.queueLimit, settings: settings, tokenizer: served.tokenizer,
                        contextSize: served.contextSize, metrics: metrics)
    }

    func buildRouter() -> Router<RelayRequestContext> {
        let controller = CompletionsController(served: served, pool: pool, metrics: metrics, apiKey: configuration.apiKey,
                                               bodyLimit: configuration.maxBodyBytes)
        let router = Router(context: RelayRequestContext.self)
        router.add(middleware: CrossOrigin(allowed: configuration.allowedOrigins))
        router.post("/v1/chat/completions") { request, context in
            await controller.complete(request, connection: await ConnectionGuard.of(context.channel), chat: true)
        }
        router.post("/v1/completions") { request, context in
            await controller.complete(request, connection: await ConnectionGuard.of(context.channel), chat: false)
        }
        router.get("/v1/models") { request, _ in
            do { return try controller.models(request) } catch { return controller.errorResponse(CompletionsController.apiError(error)) }
        }
        router.get("/health") { _, _ in
            controller.json(Health(slots: self.pool.slots.count, slots_busy: self.pool.busySlots, queue_depth: self.pool.queueDepth))
        }
        router.get("/metrics") { _, _ in
            let text = self.metrics.render(queueDepth: self.pool.queueDepth, busySlots: self.pool.busySlots, slots: self.pool.slots.count,
                                           openConnections: self.connections.current)
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: .init(byteBuffer: ByteBuffer(string: text)))
        }
        let document = OpenAPI.document(contextSize: served.contextSize)
        router.get("/openapi.json") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: document)))
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
        try configuration.validate()
        var logger = Logger(label: "relay")
        logger.logLevel = .warning
        let limits = configuration.connections, connections = self.connections
        let app = Application(
            router: buildRouter(),
            server: HTTPServerBuilder { responder in GuardedHTTP1Channel(responder: responder, limits: limits, open: connections) },
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "relay"),
            onServerRunning: { channel in onReady(channel.localAddress?.port ?? 0) },
            logger: logger)
        defer { pool.shutdown() }
        try await app.runService()
    }
}

/// Hummingbird's request context, with the connection's channel: a completion finds its
/// connection's `ConnectionGuard` through it.
struct RelayRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}

/// Cross-origin access (CORS) for the origins named with `--allowed-origins` only; other pages
/// get no CORS headers, so browsers keep them from reading answers or sending JSON.
struct CrossOrigin: RouterMiddleware {
    typealias Context = RelayRequestContext
    let allowed: Set<String>
    init(allowed: [String]) { self.allowed = Set(allowed) }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let origin = request.headers[.origin], allowed.contains(origin) || allowed.contains("*") else {
            return try await next(request, context)
        }
        var response: Response
        if request.method == .options, request.headers[.accessControlRequestMethod] != nil {
            response = Response(status: .noContent)
            response.headers[.accessControlAllowMethods] = "GET, POST, OPTIONS"
            response.headers[.accessControlAllowHeaders] = "Authorization, Content-Type"
            response.headers[.accessControlMaxAge] = "600"
        } else {
            response = try await next(request, context)
        }
        response.headers[.accessControlAllowOrigin] = origin
        response.headers[.vary] = "Origin"
        return response
    }
}
