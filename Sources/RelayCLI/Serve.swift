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

        @Option(name: .customLong("queue"), help: "Requests that may wait for a slot; more are refused with HTTP 429.")
        var queueLimit = 16

        @Option(name: .customLong("model-id"), help: "The model id clients send (default: the large model's name).")
        var modelID: String?

        func validate() throws {
            guard slots >= 1 else { throw ValidationError("-np must be at least 1") }
            guard queueLimit >= 0 else { throw ValidationError("--queue must be >= 0") }
            guard (0...65535).contains(port) else { throw ValidationError("--port must be in 0...65535") }
        }

        func run() async throws {
            let remoteLarge = try remote.make()
            if remoteLarge != nil && model.draftModel == nil {
                throw ValidationError("--large-url needs -md SMALL: the local small model gives the tokenizer and chat template")
            }
            let (large, small) = try model.load(large: remoteLarge == nil, small: true, sequences: slots)
            let primary = (large ?? small)!
            var settings = try relay.settings(sampling: sampling.options.sampling)
            settings.largeFailureToSmall = remote.fallsBackToSmall
            let pairs = (0..<slots).map { _ in
                ModePair(large: large.map { Session(model: $0, contextSize: model.ctxSize) },
                         small: small.map { Session(model: $0, contextSize: model.ctxSize) }, remote: remoteLarge)
            }
            let id = modelID ?? remote.largeModel ?? (remoteLarge == nil ? Self.name(of: model.model) : "relay-remote")
            let served = ServedModels(ids: [id], defaultMode: relay.mode, tokenizer: primary.tokenizer,
                                      template: try model.template(for: primary), contextSize: model.ctxSize,
                                      sampling: sampling.options.sampling)
            var config = RelayServer.Configuration()
            config.host = host
            config.port = port
            config.apiKey = apiKey ?? ProcessInfo.processInfo.environment["RELAY_API_KEY"]
            config.queueLimit = queueLimit
            let server = RelayServer(configuration: config, served: served, pairs: pairs, settings: settings)
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
