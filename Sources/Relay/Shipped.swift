import Foundation

/// Files shipped with Relay for known models (RelayGen cue lists in `Cues`, RelayLLM call heads in
/// `Heads`), named after the model's GGUF file. SwiftPM's `Bundle.module` stops the process when
/// its resource bundle is not beside the binary; a copied binary should instead run without them.
enum Shipped {
    static let bundle: Bundle? = {
        let name = "Relay_Relay.resources"
        let folders = [Bundle.main.bundleURL, Bundle.main.executableURL?.deletingLastPathComponent()].compactMap { $0 }
        return folders.lazy.compactMap { Bundle(url: $0.appendingPathComponent(name)) }.first
    }()

    /// `folder/<GGUF file name without .gguf>.json`, if it ships.
    static func file(in folder: String, for modelPath: String) -> URL? {
        let stem = URL(fileURLWithPath: modelPath).deletingPathExtension().lastPathComponent
        return bundle?.url(forResource: stem, withExtension: "json", subdirectory: folder)
    }
}
