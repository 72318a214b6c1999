import ArgumentParser
import Foundation
import Relay
import Remote

/// A large model behind an OpenAI-compatible completions endpoint, instead of a local -m.
struct RemoteOptions: ParsableArguments {
    @Option(name: .customLong("large-url"), help: "The large model is this OpenAI-compatible server (e.g. http://127.0.0.1:8081); -md stays local.")
    var largeURL: String?

    @Option(name: .customLong("large-model"), help: "The model name sent to --large-url.")
    var largeModel: String?

    @Option(name: .customLong("api-key-env"), help: "Environment variable holding the API key of --large-url.")
    var apiKeyEnv: String?

    @Option(name: .customLong("large-timeout"), help: "Seconds one request to --large-url may take.")
    var timeout: Double = 60

    @Option(name: .customLong("large-retries"), help: "Retries of a failed request to --large-url (with doubling back-off).")
    var retries = 2

    @Option(name: .customLong("on-large-failure"), help: "When --large-url fails: fail (the request fails) or small (the small model finishes the answer).")
    var onFailure = "fail"

    func validate() throws {
        guard ["fail", "small"].contains(onFailure) else { throw ValidationError("--on-large-failure must be fail or small (got '\(onFailure)')") }
        guard timeout > 0 else { throw ValidationError("--large-timeout must be positive") }
        guard retries >= 0 else { throw ValidationError("--large-retries must be >= 0") }
        if let largeURL {
            guard let url = URL(string: largeURL), ["http", "https"].contains(url.scheme ?? ""), url.host != nil else {
                throw ValidationError("--large-url '\(largeURL)' is not an http(s) URL")
            }
        }
    }

    var fallsBackToSmall: Bool { onFailure == "small" }

    /// The remote large model, if --large-url was given.
    func make() throws -> RemoteLarge? {
        guard let largeURL, let url = URL(string: largeURL) else { return nil }
        var options = RemoteLarge.Options(url: url)
        options.model = largeModel
        options.timeout = timeout
        options.retries = retries
        if let apiKeyEnv {
            guard let key = ProcessInfo.processInfo.environment[apiKeyEnv], !key.isEmpty else {
                throw ValidationError("--api-key-env \(apiKeyEnv): that environment variable is not set")
            }
            options.apiKey = key
        }
        return RemoteLarge(options: options)
    }
}
