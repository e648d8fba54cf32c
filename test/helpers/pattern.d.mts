export function pattern(path: string, ver: number, size: number): Buffer;
