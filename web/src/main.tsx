import { render } from 'preact';
import { App } from './app.js';
import { DEFAULT_SCENARIO, shipped } from './scenarios.js';
import { decodeState } from './url-state.js';
import './styles.css';

let boots = 0;

async function boot(): Promise<void> {
  const root = document.getElementById('app')!;
  const state = await decodeState(location.hash, DEFAULT_SCENARIO);
  const notices: string[] = [];
  if (!shipped(state.scenario)) {
    notices.push(`The link names an unknown scenario "${state.scenario}": showing ${DEFAULT_SCENARIO}.`);
    state.scenario = DEFAULT_SCENARIO;
  }
  if (state.problems.length > 0) notices.push(`Some settings in the link could not be read and were ignored (${state.problems.join(', ')}).`);
  if (boots++ === 0) root.textContent = '';
  render(<App key={boots} initial={state} notices={notices} />, root);
}

// The page keeps the fragment up to date with history.replaceState (no hashchange event); a
// hashchange means a link was pasted or followed in this tab: start over from it.
window.addEventListener('hashchange', () => void boot());

void boot();
