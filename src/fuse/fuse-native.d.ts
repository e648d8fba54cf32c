// Types for the patched fuse-native (patches/fuse-native+2.2.6.patch).
declare module 'fuse-native' {
  type Cb = (...args: any[]) => void;
  export interface FuseOptions {
    allowOther?: boolean;
    defaultPermissions?: boolean;
    autoUnmount?: boolean;
    useIno?: boolean;
    bigWrites?: boolean;
    maxWrite?: number;
    attrTimeout?: number;
    entryTimeout?: number;
    negativeTimeout?: number;
    autoCache?: boolean;
    kernelCache?: boolean;
    directIO?: boolean;
    fsname?: string;
    name?: string;
    timeout?: number | false;
    force?: boolean;
    mkdir?: boolean;
    debug?: boolean;
    extraOptions?: string[];
  }
  class Fuse {
    constructor(mnt: string, ops: Record<string, Cb>, opts?: FuseOptions);
    mount(cb: (err: Error | null) => void): void;
    unmount(cb: (err: Error | null) => void): void;
    static context(): { uid: number; gid: number; pid: number; umask?: number };
    static unmount(mnt: string, cb: (err: Error | null) => void): void;
    static isConfigured(cb: (err: Error | null, yes: boolean) => void): void;
    static NEXUS_PATCH_VERSION: number;
  }
  export = Fuse;
}
