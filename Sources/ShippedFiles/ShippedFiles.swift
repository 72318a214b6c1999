/// The cue files (`Cues/`) and call heads (`Heads/`) that ship with Relay, compiled into the binary
/// (SwiftPM's `embedInCode`) so that a copied `relay` keeps them. A file added to either folder is
/// listed here and in Package.swift; a test checks that the lists and the folders agree.
public enum ShippedFiles {
    /// RelayGen cue files: (file name, JSON bytes).
    public static let cues: [(name: String, bytes: [UInt8])] = [
        ("Qwen2.5-Coder-1.5B-Instruct.Q4_K_M.json", PackageResources.Qwen2_5_Coder_1_5B_Instruct_Q4_K_M_json),
        ("SmolLM2-135M-Instruct.Q4_1.json", PackageResources.SmolLM2_135M_Instruct_Q4_1_json),
    ]

    /// RelayLLM call heads: (file name, JSON bytes).
    public static let heads: [(name: String, bytes: [UInt8])] = [
        ("Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.json", PackageResources.Qwen2_5_Coder_0_5B_Instruct_Q4_K_M_json),
    ]
}
