import ArgumentParser
import Engine
import Foundation
import Relay
import Server

extension RelayCommand {
    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Serve the relay modes over an OpenAI-compatible HTTP API.",
            discussion: """
            POST /v1/chat/completions and /v1/completions (streaming or not; the extra field relay_mode picks the mode), \
            GET /v1/models, /health, /metrics (Prometheus) and / (a playground page). SIGINT or SIGTERM shuts down gracefully.
            """)

        @OptionGroup var model: ModelOptions
        @OptionGroup var sampling: SamplingOptions
        @OptionGroup var relay: RelayOptions
        @OptionGroup var remote: RemoteOptions

        @Option(help: "Address to listen on.") var host = "127.0.0.1"
        @Option(help: "Port to listen on (0: any free port; the chosen one is printed).") var port = 8080

        @Option(name: .customLong("api-key"), help: "Require 'Authorization: Bearer KEY' on /v1 (default: $RELAY_API_KEY if set).")
        var apiKey: String?

        @Option(name: [.customLong("np", withSingleDash: true), .customLong("parallel")], help: "Parallel slots, each with its own KV caches of -c positions (llama-server splits -c among its slots).")
        var slots = 1

        @Option(name: [.customShort("b"), .customLong("batch-size")],
                help: "Most positions in one forward while requests share the engine: a long prompt is prefilled this many tokens per step between the others' tokens (llama-server's -b). 0: as many as keep a step within twice the cost of the others' plain steps, from measured costs (a CPU forward of 2048 would stall them for seconds).")
        var batchSize = 0

        @Option(name: .customLong("queue"), help: "Requests that may wait for a slot; more are refused with HTTP 429.")
        var queueLimit = 16

        @Option(name: .customLong("model-id"), help: "The model id clients send (default: the large model's name).")
        var modelID: String?

        @Option(name: .customLong("timeout-idle"), help: "Seconds a kept-alive connection may wait for its next request, or a client may read nothing of its answer.")
        var idleTimeout = 60.0

        @Option(name: .customLong("timeout-headers"), help: "Seconds from a new connection, or a request's first byte, to the end of its header.")
        var headersTimeout = 10.0

        @Option(name: .customLong("timeout-body"), help: "Seconds from the end of a request's header to the end of its body.")
        var bodyTimeout = 60.0

        @Option(name: .customLong("max-connections"), help: "Open connections; more are closed at once.")
        var maxConnections = 256

        @Option(name: .customLong("max-body-mib"), help: "Larger request bodies are refused with HTTP 413.")
        var maxBodyMiB = 16

        @Option(name: .customLong("allowed-origins"), parsing: .upToNextOption,
                help: "Origins whose pages may call the API from a browser (CORS), e.g. http://localhost:3000, or *; default: none.")
        var allowedOrigins: [String] = []

        func validate() throws {
            guard slots >= 1 else { throw ValidationError("-np must be at least 1") }
            guard (0...4096).contains(batchSize) else { throw ValidationError("-b must be in 0...4096 (0: sized from measured costs)") }
            guard queueLimit >= 0 else { throw ValidationError("--queue must be >= 0") }
            guard (0...65535).contains(port) else { throw ValidationError("--port must be in 0...65535") }
            for (name, seconds) in [("--timeout-idle", idleTimeout), ("--timeout-headers", headersTimeout), ("--timeout-body", bodyTimeout)] {
                guard seconds > 0, seconds <= 86_400 else { throw ValidationError("\(name) must be more than 0 and at most 86400 seconds") }
            }
            guard maxConnections >= 1 else { throw ValidationError("--max-connections must be at least 1") }
            guard (1...1024).contains(maxBodyMiB) else { throw ValidationError("--max-body-mib must be in 1...1024") }
            try configuration.validate()
        }

        /// The server's settings from the flags; the API key also from $RELAY_API_KEY.
        var configuration: RelayServer.Configuration {
            var config = RelayServer.Configuration()
            config.host = host
            config.port = port
            config.apiKey = apiKey ?? ProcessInfo.processInfo.environment["RELAY_API_KEY"]
            config.queueLimit = queueLimit
            config.maxBodyBytes = maxBodyMiB << 20
            config.connections.idle = .seconds(idleTimeout)
            config.connections.headers = .seconds(headersTimeout)
            config.connections.body = .seconds(bodyTimeout)
            config.connections.maxConnections = maxConnections
            config.allowedOrigins = allowedOrigins.flatMap { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
            return config
        }

        func run() async throws {
            let remoteLarge = try remote.make()
            let models = try model.pair(for: [try Mode.named(ModeSpec.parse(relay.mode).name)], remote: remoteLarge, sequences: slots, allGiven: true)
            var settings = try relay.settings(sampling: sampling.options.sampling)
            settings.largeFailureToSmall = remote.fallsBackToSmall
            for m in [models.large, models.small] { m?.batcher.stepBudget = batchSize == 0 ? .auto : .positions(batchSize) }
            let pairs = (0..<slots).map { _ in models.sessions(contextSize: model.ctxSize) }
            let id = modelID ?? remote.largeModel ?? (remoteLarge == nil ? Self.name(of: model.model) : "relay-remote")
            let served = ServedModels(ids: [id], defaultMode: relay.mode, tokenizer: models.primary.tokenizer,
                                      template: try model.template(for: models.primary), contextSize: model.ctxSize,
                                      sampling: sampling.options.sampling)
            let server = RelayServer(configuration: configuration, served: served, pairs: pairs, settings: settings)
            let host = self.host, mode = relay.mode, slots = self.slots
            try await server.run { port in
                note("relay serve: listening on http://\(host):\(port) (model \(id), mode \(mode), \(slots) slot\(slots == 1 ? "" : "s"))")
            }
            note("relay serve: stopped")
        }

        /// A model argument as an id: the registry name, or the file name without .gguf.
        static func name(of argument: String) -> String {
            let base = (argument as NSString).lastPathComponent
            return base.hasSuffix(".gguf") ? String(base.dropLast(5)) : base
        }
    }
}
