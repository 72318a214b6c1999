import Foundation

/// The server's OpenAPI document (`Resources/openapi.json`, written by hand; `OpenAPITests` and
/// the schemathesis run in scripts/test.sh hold it to what the server does), served at
/// `/openapi.json` with the token limits of this server's context.
enum OpenAPI {
    static var template: [UInt8] { PackageResources.openapi_json }

    /// The document with `max_tokens`, `max_completion_tokens` and `n_predict` at most
    /// `contextSize - 1`, as `plan` checks them.
    static func document(contextSize: Int) -> Data {
        guard var root = try? JSONSerialization.jsonObject(with: Data(template)) as? [String: Any],
              var components = root["components"] as? [String: Any],
              var schemas = components["schemas"] as? [String: Any],
              var sampling = schemas["Sampling"] as? [String: Any],
              var properties = sampling["properties"] as? [String: Any] else { return Data(template) }
        for field in ["max_tokens", "max_completion_tokens", "n_predict"] {
            guard var p = properties[field] as? [String: Any] else { continue }
            p["maximum"] = contextSize - 1
            properties[field] = p
        }
        sampling["properties"] = properties
        schemas["Sampling"] = sampling
        components["schemas"] = schemas
        root["components"] = components
        return (try? JSONSerialization.data(withJSONObject: root, options: [.sortedKeys])) ?? Data(template)
    }
}
