export async function hookCli(_args: string[]): Promise<number> {
  return 0;
}
