#if canImport(Glibc)
import Glibc
#endif
import EmbedrecCore

/// The thread-local last-error message. A pthread key whose value is a malloc'ed C string,
/// freed by the key's destructor when the thread exits (no Foundation needed).
private let lastErrorKey: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key) { value in free(value) }
    return key
}()

private let emptyMessage: UnsafeMutablePointer<CChar> = strdup("")!

func setLastError(_ message: String) {
    let old = pthread_getspecific(lastErrorKey)
    pthread_setspecific(lastErrorKey, strdup(message))
    free(old)
}

func lastErrorPointer() -> UnsafePointer<CChar> {
    if let value = pthread_getspecific(lastErrorKey) {
        return UnsafePointer(value.assumingMemoryBound(to: CChar.self))
    }
    return UnsafePointer(emptyMessage)
}

/// Runs an export's body and turns any error into a status code plus last-error message.
/// Every export goes through here, so no Swift error escapes into C.
@inline(__always)
func status(_ body: () throws -> Void) -> Int32 {
    do {
        try body()
        return 0
    } catch let error as CoreError {
        setLastError(error.message)
        return error.kind.rawValue
    } catch {
        setLastError("internal error: \(error)")
        return CoreError.Kind.internalError.rawValue
    }
}
