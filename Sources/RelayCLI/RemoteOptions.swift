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

    @Option(name: .customLong("large-connect-timeout"), help: "Seconds to connect to --large-url.")
    var connectTimeout: Double = 5

    @Option(name: .customLong("large-read-timeout"), help: "Seconds --large-url may send nothing while a reply is due (replies are not streamed: it also bounds the time to write one).")
    var readTimeout: Double = 30

    @Option(name: .customLong("large-timeout"), help: "Seconds one request to --large-url may take in all, connecting included (each retry has its own).")
    var timeout: Double = 60

    @Option(name: .customLong("large-max-reply"), help: "Largest reply accepted from --large-url, in bytes (suffix K or M); a longer one is a bad response, not read further.")
    var maxReply = "8M"

    @Option(name: .customLong("large-retries"), help: "Retries of a failed request to --large-url (with doubling back-off).")
    var retries = 2

    @Option(name: .customLong("on-large-failure"), help: "When --large-url fails: fail (the request fails) or small (the small model finishes the answer).")
    var onFailure = "fail"

    func validate() throws {
        guard ["fail", "small"].contains(onFailure) else { throw ValidationError("--on-large-failure must be fail or small (got '\(onFailure)')") }
        for (flag, seconds) in [("--large-connect-timeout", connectTimeout), ("--large-read-timeout", readTimeout), ("--large-timeout", timeout)] {
            guard seconds > 0, seconds < 1e6 else { throw ValidationError("\(flag) must be a positive number of seconds (got \(seconds))") }
        }
        guard let bytes = Self.bytes(maxReply), bytes > 0, bytes <= Int(UInt32.max) else {
            throw ValidationError("--large-max-reply must be bytes, e.g. 65536, 512K or 8M, under 4096M (got '\(maxReply)')")
        }
        guard retries >= 0 else { throw ValidationError("--large-retries must be >= 0") }
        if let largeURL {
            guard let url = URL(string: largeURL), ["http", "https"].contains(url.scheme ?? ""), url.host != nil else {
                throw ValidationError("--large-url '\(largeURL)' is not an http(s) URL")
            }
        }
    }

    var fallsBackToSmall: Bool { onFailure == "small" }

    /// "65536", "512K", "8M": bytes.
    static func bytes(_ text: String) -> Int? {
        let scale = ["K": 1 << 10, "M": 1 << 20][text.suffix(1).uppercased()]
        guard let n = Int(scale == nil ? text : String(text.dropLast())) else { return nil }
        let (bytes, overflow) = n.multipliedReportingOverflow(by: scale ?? 1)
        return overflow ? nil : bytes
    }

    /// The remote large model, if --large-url was given.
    func make() throws -> RemoteLarge? {
        guard let largeURL, let url = URL(string: largeURL) else { return nil }
        var options = RemoteLarge.Options(url: url)
        options.model = largeModel
        options.connectTimeout = connectTimeout
        options.readTimeout = readTimeout
        options.timeout = timeout
        options.maxReply = Self.bytes(maxReply)!
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
